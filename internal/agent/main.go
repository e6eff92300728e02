package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main is the agent command: `shoal agent [flags]`, and the whole of the agent-only build
// (cmd/shoal-agent) that the installer uploads. args are the flags after "agent"; version is
// reported in hello and info. It returns the process exit status.
//
// It parses flags with package flag rather than cobra, so the agent-only build links neither
// cobra nor anything else of the console and stays a third of the size of shoal: the bytes every
// host downloads on first contact.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, version string) int {
	if code, ok := AskpassMain(stdout); ok {
		return code
	}
	var (
		opts      Options
		outputCap string
		verbose   bool
	)
	fs := flag.NewFlagSet("shoal agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shoal agent [flags]\n\nRuns the agent: requests on stdin, responses on stdout (started by the daemon).\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.StateDir, "state-dir", "", "directory for result directories (default: the directory of the agent's executable)")
	fs.IntVar(&opts.MaxRunning, "max-running", 0, "commands run at once (default 2×CPUs, at least 4)")
	fs.IntVar(&opts.MaxQueued, "max-queued", 0, "commands waiting for a worker before requests are refused as busy (default 256, -1 for none)")
	fs.StringVar(&outputCap, "output-cap", "", "output kept per command, e.g. 64M (default 64M)")
	fs.BoolVar(&verbose, "v", false, "log debug messages to stderr")
	fs.BoolVar(&verbose, "verbose", false, "log debug messages to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // flag has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shoal agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if outputCap != "" {
		n, err := parseSize(outputCap)
		if err != nil {
			fmt.Fprintf(stderr, "shoal agent: --output-cap: %v\n", err)
			return 2
		}
		opts.OutputCap = n
	}
	if opts.StateDir == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "shoal agent: finding the default state directory: %v\n", err)
			return 1
		}
		opts.StateDir = filepath.Dir(exe)
	}
	// The agent's work is moving bytes between pipes, files and the connection, never more
	// than one core's worth; with one P its goroutines hand off without waking other threads.
	// 200 local agents running `date` used 15% less CPU in all (daemon, agents, bash and date:
	// 835 -> 710 ms per run). GOMAXPROCS set by the user wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if h, ok := InstalledHash(opts.StateDir); ok {
		opts.BinarySHA256 = h // just uploaded by the installer: no need to read the binary
	}
	opts.Logger = NewLogger(stderr, verbose)
	opts.Version = version

	// A write to a closed stdout must fail with EPIPE, not kill the agent, so running commands
	// still finish into their result directories. Notify (unlike Ignore) is not inherited by
	// the commands the agent starts.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE, syscall.SIGHUP)
	defer signal.Stop(pipes)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A signal must also end the read of stdin, which a blocking descriptor would not.
	in := pollable(stdin)
	unblock := context.AfterFunc(ctx, func() {
		opts.Logger.Info("stopping on a signal: killing commands")
		if f, ok := in.(*os.File); ok {
			f.SetReadDeadline(time.Now())
		}
	})
	defer unblock()
	err := Serve(ctx, in, stdout, opts)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "shoal: %v\n", err)
		return 1
	}
	return 0 // a signal stopped it: commands were killed, results kept
}

// parseSize reads a byte count with an optional K, M or G suffix (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, strings.TrimSuffix(t, "G")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// pollable returns r, or for a pipe or socket on a blocking descriptor, a non-blocking *os.File for
// the same descriptor, whose reads a deadline can interrupt. Terminals and files are left alone.
func pollable(r io.Reader) io.Reader {
	f, ok := r.(*os.File)
	if !ok {
		return r
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return r
	}
	fd := int(f.Fd()) // Fd puts the descriptor in blocking mode; undo that below
	if err := syscall.SetNonblock(fd, true); err != nil {
		return r
	}
	return os.NewFile(uintptr(fd), f.Name())
}
