// Command simfleet serves a simulated fleet (package simfleet) until SIGTERM or SIGINT; see
// scripts/simfleet, which starts and stops it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/simfleet"
)

func main() {
	n := flag.Int("n", 5, "number of hosts")
	dir := flag.String("dir", "", "fleet directory (created; must not exist)")
	bin := flag.String("installed", "", "comma-separated shoal binaries whose agents every host has (the ones a daemon offers)")
	hashes := flag.String("installed-hash", "", "comma-separated agent hashes every host has")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "simfleet: -dir is required")
		os.Exit(2)
	}
	if _, err := os.Stat(*dir); err == nil {
		fmt.Fprintf(os.Stderr, "simfleet: %s exists\n", *dir)
		os.Exit(1)
	}
	var inst []string
	for _, b := range strings.Split(*bin, ",") {
		if b == "" {
			continue
		}
		av := (&install.Source{Self: b}).Available()
		if len(av) == 0 {
			fmt.Fprintf(os.Stderr, "simfleet: %s offers no agent\n", b)
			os.Exit(1)
		}
		for _, a := range av {
			inst = append(inst, a.Hash)
		}
	}
	for _, h := range strings.Split(*hashes, ",") {
		if h != "" {
			inst = append(inst, h)
		}
	}
	if want := uint64(*n)*2 + 256; simfleet.RaiseFDLimit(want) < want {
		fmt.Fprintf(os.Stderr, "simfleet: RLIMIT_NOFILE is below the %d descriptors %d connected hosts need\n", want, *n)
	}
	start := time.Now()
	f, err := simfleet.Start(simfleet.Options{N: *n, Dir: *dir, Installed: inst})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	usage := filepath.Join(*dir, "usage")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	if err := os.WriteFile(filepath.Join(*dir, "pid"), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		f.Close()
		os.Exit(1)
	}
	fmt.Printf("simfleet: %d hosts up in %v\n", *n, time.Since(start).Round(time.Millisecond))
	for s := range sigs {
		if err := simfleet.WriteUsage(usage); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		if s != syscall.SIGUSR1 {
			break
		}
	}
	f.Close()
	simfleet.WriteUsage(usage)
}
