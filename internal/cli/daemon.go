package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/shoal-sh/shoal/internal/certs"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/render"
	"github.com/shoal-sh/shoal/internal/show"
)

// newDaemonCmd builds `shoal daemon` (run in the foreground) and its start, stop and status.
func newDaemonCmd(g *globals) *cobra.Command {
	var logFile string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the resident daemon in the foreground (start, stop, status manage it)",
		Long: `shoal daemon runs the resident engine in the foreground, logging to stderr.
It keeps agents connected so the next command is one message per host.
Clients start it by themselves when none answers; see also start, stop and status.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return g.runDaemon(cmd.Context(), logFile) },
	}
	cmd.Flags().StringVar(&logFile, "log", "", "log to `FILE` instead of stderr, rotated at [daemon] log_max_size (started daemons log to daemon.log)")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "start",
			Short: "Start the daemon in the background unless one runs",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, args []string) error { return g.startDaemon(cmd.Context()) },
		},
		&cobra.Command{
			Use:   "stop",
			Short: "Stop the running daemon cleanly",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, args []string) error { return g.stopDaemon(cmd.Context()) },
		},
		&cobra.Command{
			Use:   "reload",
			Short: "Make the daemon read every configuration file again",
			Long: `shoal daemon reload makes the running daemon read config.toml and the ssh_config
files again at their next use. It notices a file whose size or modification time changed
by itself, at the next request that uses it; reload is for the rest.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return g.reloadDaemon(cmd.Context()) },
		},
		newDaemonStatusCmd(g),
	)
	return cmd
}

// reloadDaemon asks the running daemon to read its configuration files again.
func (g *globals) reloadDaemon(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, _, err := g.dialRunning(ctx)
	if errors.Is(err, client.ErrNotRunning) {
		fmt.Fprintln(g.stdout, "no shoal daemon is running")
		return nil
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Reload(ctx); err != nil {
		return fmt.Errorf("reloading the daemon (pid %d): %w", c.DaemonPID(), err)
	}
	fmt.Fprintln(g.stdout, "the shoal daemon reads its configuration again")
	return nil
}

// newDaemonStatusCmd builds `shoal daemon status [-o json]`.
func newDaemonStatusCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Describe the running daemon, its resources and its host sessions",
		Long: `shoal daemon status describes the running daemon: its pid, version, uptime and clients,
its goroutines, heap and open file descriptors, and one line per host session.
With -o json it writes one JSON object instead (see docs/json.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "", "text", "table":
			case "json":
			default:
				return fmt.Errorf("-o %q: want text or json", output)
			}
			return g.daemonStatus(cmd.Context(), output == "json")
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "text (the default) or json")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// runDaemon serves on the Unix socket until SIGINT or SIGTERM, a client's stop, or idle exit.
// It logs to logFile, rotated by size, or to stderr when logFile is "".
func (g *globals) runDaemon(ctx context.Context, logFile string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	tuneGC(os.Getenv)
	paths := config.DefaultPaths()
	var logw io.Writer = g.stderr
	if logFile != "" {
		lj := rotatedLog(cfg, logFile)
		defer lj.Close()
		logw = lj
	}
	logger := slog.New(slog.NewTextHandler(logw, nil))
	opts, closeRecords, err := g.daemonOptions(cfg, paths, logger)
	if err != nil {
		return err
	}
	defer closeRecords()
	sock := paths.Socket()
	ln, err := daemon.Listen(sock)
	if err != nil {
		return err
	}
	opts.Socket = sock
	if cfg.Daemon.Listen != "" {
		tln, err := tlsListener(cfg, logger)
		if err != nil {
			ln.Close()
			return err
		}
		opts.AllowUnverifiedTLS = cfg.Daemon.InsecureNoClientAuth
		logger.Info("serving mutual TLS", "listen", tln.Addr().String())
		ln = daemon.Merge(ln, tln)
	}
	if cfg.Daemon.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.Daemon.MetricsAddress())
		if err != nil {
			ln.Close()
			return fmt.Errorf("serving metrics (daemon.metrics_listen): %w", err)
		}
		opts.MetricsListener = mln
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	return daemon.Serve(ctx, ln, opts)
}

// rotatedLog returns the writer of a daemon's log file: rotated when it would pass
// [daemon] log_max_size (in whole MiB, at least one), keeping log_files compressed old logs.
// Caller must close it.
func rotatedLog(cfg *config.Config, path string) *lumberjack.Logger {
	return &lumberjack.Logger{
		Filename:   path,
		MaxSize:    max(1, int(cfg.Daemon.LogMaxSize>>20)),
		MaxBackups: cfg.Daemon.LogFiles,
		Compress:   true,
	}
}

// startDaemon starts a detached daemon under the start lock and waits until it answers.
func (g *globals) startDaemon(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	paths := config.DefaultPaths()
	sock := paths.Socket()
	pid, err := client.Start(ctx, sock, *g.daemonStart(paths))
	if err != nil {
		return err
	}
	if pid == 0 {
		fmt.Fprintf(g.stdout, "a shoal daemon is already running on %s\n", sock)
		return nil
	}
	fmt.Fprintf(g.stdout, "started the shoal daemon (pid %d) on %s; log %s\n", pid, sock, logPath(paths))
	return nil
}

// dialRunning connects to a running daemon without starting one.
func (g *globals) dialRunning(ctx context.Context) (*client.Client, string, error) {
	sock := config.DefaultPaths().Socket()
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if g.daemonAddr != "" {
		cfg, err := g.loadConfig()
		if err != nil {
			return nil, g.daemonAddr, err
		}
		addr, conf, err := remoteTLS(cfg, g.daemonAddr, "", "", "")
		if err != nil {
			return nil, g.daemonAddr, err
		}
		c, err := client.Dial(ctx, client.Options{Addr: addr, TLS: conf, Version: Version})
		return c, g.daemonAddr, err
	}
	c, err := client.Dial(ctx, client.Options{Socket: sock, Version: Version})
	return c, sock, err
}

// stopDaemon asks the daemon to stop and waits until its socket is gone. A daemon of
// another version cannot be asked, so it gets SIGTERM.
func (g *globals) stopDaemon(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, sock, err := g.dialRunning(ctx)
	var ve *client.VersionError
	switch {
	case errors.Is(err, client.ErrNotRunning):
		fmt.Fprintln(g.stdout, "no shoal daemon is running")
		return nil
	case errors.As(err, &ve) && ve.DaemonPID > 0:
		if err := syscall.Kill(ve.DaemonPID, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stopping the daemon of another version (pid %d): %w", ve.DaemonPID, err)
		}
	case err != nil:
		return err
	default:
		pid := c.DaemonPID()
		err := c.Stop(ctx)
		c.Close()
		if err != nil {
			return fmt.Errorf("stopping the daemon (pid %d): %w", pid, err)
		}
	}
	// Wait, bounded, for the socket to stop answering.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		nc, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "unix", sock)
		if err != nil {
			fmt.Fprintln(g.stdout, "the shoal daemon stopped")
			return nil
		}
		nc.Close()
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the daemon on %s still answers 30s after being told to stop", sock)
}

// daemonStatus prints the daemon and its hosts, as one JSON object when asJSON.
func (g *globals) daemonStatus(ctx context.Context, asJSON bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, _, err := g.dialRunning(ctx)
	if errors.Is(err, client.ErrNotRunning) {
		if asJSON {
			fmt.Fprintln(g.stderr, "no shoal daemon is running")
		} else {
			fmt.Fprintln(g.stdout, "no shoal daemon is running")
		}
		return exitError{code: 3}
	}
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		_, err := show.WriteStatus(g.stdout, st, show.ReportOptions{JSON: true})
		return err
	}
	res := ""
	if r := show.ResourcesString(st); r != "" {
		res = ", " + strings.ReplaceAll(r, " · ", ", ")
	}
	fmt.Fprintf(g.stdout, "pid %d, version %s, up %s, %d client(s), socket %s%s\n",
		st.PID, st.Version, time.Since(st.Started).Round(time.Second), st.Clients, st.Socket, res)
	if len(st.Hosts) == 0 {
		fmt.Fprintln(g.stdout, "no host sessions")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATE\tAGENT\tAGENT PID\tRTT\tLAST SEEN\tRUNNING\tCONFIG\tERROR")
	for _, h := range st.Hosts {
		seen := "-"
		if !h.LastSeen.IsZero() {
			seen = time.Since(h.LastSeen).Round(time.Second).String() + " ago"
		}
		rtt := "-"
		if h.LastRTT > 0 {
			rtt = h.LastRTT.Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", h.Host, h.State, orDash(h.AgentVersion), h.AgentPID, rtt, seen, h.Running, orDash(h.Config),
			render.ShowError(render.GroupError(h.Host, h.Err), []string{h.Host}))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tlsListener listens on [daemon] listen with mutual TLS (or, with
// insecure_no_client_auth, TLS that verifies a client certificate only when given,
// with a loud warning in the log).
func tlsListener(cfg *config.Config, logger *slog.Logger) (net.Listener, error) {
	d := cfg.Daemon
	return daemon.ListenTLS(d.Listen, daemon.TLSOptions{Cert: config.ExpandHome(d.TLSCert), Key: config.ExpandHome(d.TLSKey),
		ClientCA: config.ExpandHome(d.ClientCA), InsecureNoClientAuth: d.InsecureNoClientAuth, Logger: logger})
}

// remoteTLS returns the address and client TLS configuration for reaching the
// daemon at addr ("tls://HOST:PORT") with the given files ("" = the [client] ones).
func remoteTLS(cfg *config.Config, addr, cert, key, ca string) (string, *tls.Config, error) {
	hostport, err := config.TLSAddress(addr)
	if err != nil {
		return "", nil, err
	}
	dcert, dkey, dca := cfg.ClientTLSFiles()
	if cert == "" {
		cert, key = dcert, dkey
	}
	if ca == "" {
		ca = dca
	}
	host, _, _ := net.SplitHostPort(hostport)
	conf, err := certs.ClientConfig(config.ExpandHome(cert), config.ExpandHome(key), config.ExpandHome(ca), host)
	if err != nil {
		return "", nil, fmt.Errorf("mutual TLS for %s: %w (create them with `shoal certs init` and `shoal certs issue NAME`, "+
			"or set [client] tls_cert, tls_key and ca)", addr, err)
	}
	return hostport, conf, nil
}

// gateways builds the daemon's gateways from the [[gateway]] entries: each takes
// the hosts its expression names.
func gateways(cfg *config.Config) ([]daemon.Gateway, error) {
	var out []daemon.Gateway
	for i, gc := range cfg.Gateways {
		hosts, err := cfg.Targets(gc.Hosts, nil)
		if err != nil {
			return nil, fmt.Errorf("gateway[%d] %s: expanding hosts %q: %w", i, gc.Address, gc.Hosts, err)
		}
		set := make(map[string]bool, len(hosts))
		for _, h := range hosts {
			set[h] = true
		}
		addr, conf, err := remoteTLS(cfg, gc.Address, gc.TLSCert, gc.TLSKey, gc.CA)
		if err != nil {
			return nil, fmt.Errorf("gateway[%d]: %w", i, err)
		}
		out = append(out, daemon.Gateway{
			Address: gc.Address,
			Match:   func(h string) bool { return set[h] },
			Dial: func(ctx context.Context, hops int) (*client.Client, error) {
				return client.Dial(ctx, client.Options{Addr: addr, TLS: conf, Version: Version, Hops: hops})
			},
		})
	}
	return out, nil
}

// daemonGOGC is the resident daemon's GC target percent. The daemon's heap is
// mostly long-lived per-host state: with Go's default of 100 half its memory is
// headroom for garbage, while at 30 an idle fleet costs about a third less and
// the extra collections are cheap next to the I/O of a busy run.
const daemonGOGC = 30

// tuneGC sets the daemon's GC target unless the user set GOGC or GOMEMLIMIT, in
// which case the runtime already follows them.
func tuneGC(getenv func(string) string) bool {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(daemonGOGC)
	return true
}
