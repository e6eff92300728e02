package daemon_test

import (
	"context"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// TestFileStreamMemory: a 32 MiB put and get over TLS never hold the file in
// memory: the heap (client, daemon and agent all in this process, collected
// eagerly) stays well under the file's size.
func TestFileStreamMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB")
	}
	checkLeaks(t)
	ca := newTestCA(t, "test CA")
	d := startTLSDaemon(t, ca, "d", newPipeTransport(t))
	alice, err := client.Dial(context.Background(), client.Options{Addr: d.addr, TLS: ca.clientTLS("alice"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	const size = 32 << 20
	src := filepath.Join(t.TempDir(), "big")
	want := blob(t, src, size, 0o600)
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	var mu sync.Mutex
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapAlloc)
			mu.Unlock()
		}
	}()
	dest := filepath.Join(t.TempDir(), "big")
	res, err := alice.Put(context.Background(), []string{"a"}, client.PutRequest{LocalPath: src, Dest: dest})
	if err != nil || res[0].Status != proto.StatusOK {
		t.Fatalf("put: %+v, %v", res, err)
	}
	out := t.TempDir()
	res, err = alice.Get(context.Background(), []string{"a"}, client.GetRequest{Src: dest, DestDir: out})
	if err != nil || res[0].Status != proto.StatusOK {
		t.Fatalf("get: %+v, %v", res, err)
	}
	close(stop)
	wg.Wait()
	if got := fileSHA(t, filepath.Join(out, "a", "big")); got != want {
		t.Errorf("SHA-256 %s; want %s", got, want)
	}
	grew := int64(peak) - int64(base.HeapAlloc)
	t.Logf("heap grew by at most %d MiB moving a %d MiB file both ways", grew>>20, size>>20)
	if grew > size*3/4 {
		t.Errorf("the heap grew by %d MiB for a %d MiB file: is it held whole?", grew>>20, size>>20)
	}
}
