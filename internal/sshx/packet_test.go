package sshx

import "testing"

// TestPacketSize checks that only bulk writes (an agent upload, a file chunk) go in large
// packets, so a connection that carries only the agent's frames keeps small buffers.
func TestPacketSize(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{1, maxWrite},
		{maxWrite, maxWrite},
		{bulkMin - 1, maxWrite},
		{bulkMin, bulkWrite},
		{256 << 10, bulkWrite},
	} {
		if got := packetSize(tc.n); got != tc.want {
			t.Errorf("packetSize(%d) = %d; want %d", tc.n, got, tc.want)
		}
	}
	if bulkWrite > 32<<10 {
		t.Errorf("bulk packets of %d bytes: OpenSSH's sshd accepts at most 32 KiB", bulkWrite)
	}
}
