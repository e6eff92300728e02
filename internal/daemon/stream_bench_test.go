package daemon_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// BenchmarkFileTransfer puts and gets a 16 MiB file on two in-process hosts: from
// a Unix client (the daemon reads and writes the files), a TLS client (the bytes
// travel over the connection) and a TLS client whose hosts are behind a gateway.
// Throughput counts the bytes of every host.
func BenchmarkFileTransfer(b *testing.B) {
	ca := newTestCA(b, "bench CA")
	pipes := newPipeTransport(b)
	gw := startTLSDaemon(b, ca, "gw", pipes)
	front := startTLSDaemon(b, ca, "front", pipes, gatewayTo(ca, "front", gw, "g1", "g2"))
	const size = 16 << 20
	src := filepath.Join(b.TempDir(), "blob")
	blob(b, src, size, 0o644)
	local, err := client.Dial(context.Background(), client.Options{Socket: front.socket, Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer local.Close()
	remote, err := client.Dial(context.Background(), client.Options{Addr: front.addr, TLS: ca.clientTLS("alice"), Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer remote.Close()
	for _, tc := range []struct {
		name  string
		c     *client.Client
		hosts []string
	}{{"unix", local, []string{"h1", "h2"}}, {"tls", remote, []string{"h1", "h2"}}, {"tls-gateway", remote, []string{"g1", "g2"}}} {
		dest := filepath.Join(b.TempDir(), "blob")
		b.Run(tc.name+"/put", func(b *testing.B) {
			b.SetBytes(int64(size * len(tc.hosts)))
			for b.Loop() {
				res, err := tc.c.Put(context.Background(), tc.hosts, client.PutRequest{LocalPath: src, Dest: dest})
				checkFiles(b, res, err)
			}
		})
		b.Run(tc.name+"/get", func(b *testing.B) {
			b.SetBytes(int64(size * len(tc.hosts)))
			out := b.TempDir()
			for b.Loop() {
				res, err := tc.c.Get(context.Background(), tc.hosts, client.GetRequest{Src: dest, DestDir: out})
				checkFiles(b, res, err)
			}
		})
	}
}

func checkFiles(b *testing.B, res []client.FileResult, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res {
		if r.Status != proto.StatusOK {
			b.Fatalf("%+v", r)
		}
	}
}
