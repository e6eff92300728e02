package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
	"github.com/shoal-sh/shoal/internal/transport/openssh"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

// sessionWith returns a connection to the engine for the other commands: the resident
// daemon (started when none answers), a remote one (--daemon tls://...), or, with
// noDaemon or [daemon] use = false, the same daemon code served in this process over an
// in-memory listener. The returned func closes everything; call it when done.
func (g *globals) sessionWith(ctx context.Context, noDaemon bool) (client.Session, func(), error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	paths := config.DefaultPaths()
	remote := g.daemonAddr
	if remote == "" && !noDaemon {
		remote = cfg.Client.Daemon
	}
	if remote != "" {
		if noDaemon {
			return nil, nil, errors.New("--no-daemon and --daemon do not go together")
		}
		addr, conf, err := remoteTLS(cfg, remote, "", "", "")
		if err != nil {
			return nil, nil, err
		}
		c, err := client.Dial(ctx, client.Options{Addr: addr, TLS: conf, Version: Version})
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to the daemon at %s: %w", remote, err)
		}
		return c, func() { c.Close() }, nil
	}
	if noDaemon || !cfg.Daemon.Use {
		return g.inProcess(ctx, cfg, paths)
	}
	c, err := client.Dial(ctx, client.Options{
		Socket:  paths.Socket(),
		Version: Version,
		Start:   &client.StartOptions{Args: g.daemonArgs()}, // runs `shoal daemon start`
		Config:  g.clientConfig(),
	})
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Close() }, nil
}

// inProcess serves the daemon engine in this process and dials it.
func (g *globals) inProcess(ctx context.Context, cfg *config.Config, paths config.Paths) (client.Session, func(), error) {
	opts, closeRecords, err := g.daemonOptions(cfg, paths, slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, nil, err
	}
	opts.Socket = "in-process"
	ln := daemon.NewMemListener()
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := daemon.Serve(sctx, ln, opts); err != nil {
			fmt.Fprintf(g.stderr, "shoal: in-process engine: %v\n", err)
		}
	}()
	shutdown := func() {
		stop()
		wg.Wait()
		closeRecords()
	}
	c, err := client.Dial(ctx, client.Options{DialFunc: ln.Dial, Version: Version})
	if err != nil {
		shutdown()
		return nil, nil, err
	}
	return c, func() {
		c.Close()
		shutdown()
	}, nil
}

// logPath is where a detached daemon writes its diagnostics.
func logPath(p config.Paths) string { return filepath.Join(p.StateDir, "daemon.log") }

// daemonStart is how `shoal daemon start` starts a daemon: with this process's flags, logging
// to daemon.log (rotated; the file also takes what the Go runtime writes to stderr, a panic).
func (g *globals) daemonStart(paths config.Paths) *client.StartOptions {
	return &client.StartOptions{Args: append(g.daemonArgs(), "--log", logPath(paths)), LogFile: logPath(paths)}
}

// daemonArgs are the flags a started daemon needs to see what this process sees.
func (g *globals) daemonArgs() []string {
	var args []string
	if g.configFile != "" {
		if abs, err := filepath.Abs(g.configFile); err == nil {
			args = append(args, "--config", abs)
		}
	}
	if g.sshConfig != "" {
		if abs, err := filepath.Abs(g.sshConfig); err == nil {
			args = append(args, "--ssh-config", abs)
		}
	}
	if g.connectTimeout > 0 {
		args = append(args, "--connect-timeout", g.connectTimeout.String())
	}
	return args
}

// daemonOptions builds the daemon's options from the configuration: records under
// the state directory and a transport per host (ssh, openssh or local). The returned
// func closes the audit log.
func (g *globals) daemonOptions(cfg *config.Config, paths config.Paths, logger *slog.Logger) (daemon.Options, func(), error) {
	if err := os.MkdirAll(paths.StateDir, 0o700); err != nil {
		return daemon.Options{}, nil, fmt.Errorf("creating state directory: %w", err)
	}
	al, err := audit.Open(audit.Options{Path: filepath.Join(paths.StateDir, "audit.log"), MaxSize: int64(cfg.Daemon.AuditMaxSize), Syslog: cfg.Audit.Syslog})
	if err != nil {
		return daemon.Options{}, nil, err
	}
	r := newResolver(cfg, paths, g.sshDialer(cfg, func(msg string) { logger.Warn(msg) }), logger)
	r.user = g.loginUser
	if g.demoDir != "" {
		// The demo's hosts are machines of their own, each with its home under the demo's
		// directory; no other name is reached.
		r.local.(*local.Transport).Homes = filepath.Join(g.demoDir, "homes")
		r.demo = true
	}
	r.source = describe(*g.clientConfig())
	opts := daemon.Options{
		Resolve:         r.resolve,
		Fanout:          cfg.Fanout,
		Version:         Version,
		Logger:          logger,
		Audit:           al,
		StateFile:       filepath.Join(paths.StateDir, "state.json"),
		HistoryFile:     filepath.Join(paths.StateDir, "history.jsonl"),
		IdleExit:        cfg.Daemon.IdleExit.Std(),
		IdleHostTimeout: cfg.Daemon.IdleHostTimeout.Std(),
		OutputCap:       int64(cfg.Agent.OutputCap),

		HistoryRuns:      cfg.Daemon.HistoryRuns,
		HistoryBytes:     int64(cfg.Daemon.HistorySize),
		KeepOnDisconnect: cfg.Daemon.KeepOnDisconnect,
	}
	if !r.demo {
		rs := &resolvers{g: g, paths: paths, logger: logger}
		opts.ResolveFor, opts.Reload = rs.resolveFor, rs.reload
	}
	if opts.Gateways, err = gateways(cfg); err != nil {
		al.Close()
		return daemon.Options{}, nil, err
	}
	return opts, func() { al.Close() }, nil
}

// sshConfigFile returns the ssh_config file to read alone (-F, else [ssh] ssh_config), or ""
// for the user's and the system's.
func (g *globals) sshConfigFile(cfg *config.Config) string {
	if g.sshConfig != "" {
		return g.sshConfig
	}
	return config.ExpandHome(cfg.SSH.Config)
}

// sshDialer returns the built-in SSH client as the configuration and the flags set it up; warn
// receives problems with the system's ssh_config.
func (g *globals) sshDialer(cfg *config.Config, warn func(string)) *sshx.Dialer {
	d := &sshx.Dialer{
		ConfigFile:          g.sshConfigFile(cfg),
		Warn:                warn,
		ConnectTimeout:      cfg.SSH.ConnectTimeout.Std(),
		ForceConnectTimeout: g.connectTimeout,
		AcceptNew:           cfg.SSH.KnownHosts == config.KnownHostsAcceptNew,
		KnownHostsFile:      config.ExpandHome(cfg.SSH.KnownHostsFile),
		BastionStartups:     cfg.SSH.BastionStartups,
	}
	for _, f := range cfg.SSH.IdentityFiles {
		d.IdentityFiles = append(d.IdentityFiles, config.ExpandHome(f))
	}
	if p := os.Getenv("SHOAL_ASKPASS"); p != "" {
		d.Prompt = sshx.AskpassPrompt(p)
	}
	return d
}

// resolver maps host names to transports, sharing one transport of each kind.
type resolver struct {
	cfg       *config.Config
	agentArgs []string
	logger    *slog.Logger

	ssh     transport.Transport
	openssh transport.Transport
	local   transport.Transport

	demo bool   // only the configuration's hosts are reached
	user string // -l: log in as this user everywhere

	dialer  *sshx.Dialer // the ssh transport's
	sshArgs []string     // the openssh transport's options
	source  string       // the configuration, as status shows it
}

func newResolver(cfg *config.Config, paths config.Paths, dialer *sshx.Dialer, logger *slog.Logger) *resolver {
	src := &install.Source{PlatformDir: config.ExpandHome(cfg.Agent.PlatformDir), Compression: cfg.Agent.UploadCompression}
	stderr := func(host string) io.Writer { return &prefixLog{logger: logger, host: host} }
	r := &resolver{cfg: cfg, logger: logger}
	r.ssh = sshtr.New(sshtr.Options{Dialer: dialer, Source: src, Stderr: stderr})
	var sshArgs []string
	if t := dialer.ForceConnectTimeout; t > 0 {
		// ssh counts whole seconds; round up so that a short timeout is not "none".
		sshArgs = append(sshArgs, "-o", "ConnectTimeout="+strconv.Itoa(int((t+time.Second-1)/time.Second)))
	}
	r.openssh = openssh.New(openssh.Options{ConfigFile: dialer.ConfigFile, Args: sshArgs, Source: src, Stderr: stderr})
	r.dialer, r.sshArgs = dialer, sshArgs
	r.local = &local.Transport{BaseDir: filepath.Join(paths.CacheDir, "local")}
	a := cfg.Agent
	if a.MaxRunning > 0 {
		r.agentArgs = append(r.agentArgs, "--max-running", strconv.Itoa(a.MaxRunning))
	}
	if a.MaxQueued != 0 {
		r.agentArgs = append(r.agentArgs, "--max-queued", strconv.Itoa(a.MaxQueued))
	}
	if a.OutputCap > 0 {
		r.agentArgs = append(r.agentArgs, "--output-cap", strconv.FormatInt(int64(a.OutputCap), 10))
	}
	return r
}

func (r *resolver) resolve(host string) (daemon.Host, error) {
	if r.demo {
		if err := demoOnly(r.cfg, []string{host}); err != nil {
			return daemon.Host{}, err
		}
	}
	hs := r.cfg.HostFor(host)
	t := transport.Target{Name: host, Port: hs.Port, User: hs.User, AgentArgs: r.agentArgs}
	if r.user != "" {
		t.User = r.user
	}
	if hs.Address != host {
		t.Address = hs.Address
	}
	h := daemon.Host{Target: t, TransportName: hs.Transport, Config: r.source}
	var conn string // what else decides the connection, besides the target
	switch hs.Transport {
	case "ssh", "":
		h.Target.InstallDir = r.cfg.Agent.InstallDir
		h.Transport, h.TransportName = r.ssh, "ssh"
		hc, err := r.dialer.Resolve(host, sshx.Override{HostName: t.Address, Port: t.Port, User: t.User})
		if err != nil {
			// Connecting reports the problem; until the file changes, it is one session.
			conn = "unresolved " + r.dialer.ConfigFile
		} else {
			conn = hc.Key()
		}
	case "openssh":
		h.Target.InstallDir = r.cfg.Agent.InstallDir
		h.Transport = r.openssh
		conn = fmt.Sprintf("%q %q", r.dialer.ConfigFile, r.sshArgs)
	case "local":
		h.Transport = r.local
	default:
		return daemon.Host{}, fmt.Errorf("host %s: unknown transport %q", host, hs.Transport)
	}
	h.Key = fmt.Sprintf("%#v", []any{h.TransportName, h.Target.Name, h.Target.Address, h.Target.Port, h.Target.User,
		h.Target.InstallDir, h.Target.AgentArgs, conn})
	return h, nil
}

// prefixLog forwards an agent's stderr lines to the daemon's log with the host.
type prefixLog struct {
	logger *slog.Logger
	host   string
}

func (p *prefixLog) Write(b []byte) (int, error) {
	p.logger.Warn("agent stderr", "host", p.host, "text", string(b))
	return len(b), nil
}

// dialTimeout bounds a status or stop connection to a running daemon.
const dialTimeout = 5 * time.Second
