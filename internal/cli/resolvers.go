package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
)

// clientConfig is the configuration this process runs with, as a client tells the daemon.
func (g *globals) clientConfig() *proto.ClientConfig {
	cc := &proto.ClientConfig{ConnectTimeout: int64(g.connectTimeout), User: g.loginUser}
	if g.configFile != "" {
		cc.ConfigFile, _ = filepath.Abs(g.configFile)
	}
	if g.sshConfig != "" {
		cc.SSHConfig, _ = filepath.Abs(g.sshConfig)
	}
	return cc
}

// describe says what cc is, for `shoal daemon status`.
func describe(cc proto.ClientConfig) string {
	var parts []string
	if cc.ConfigFile != "" {
		parts = append(parts, "--config "+cc.ConfigFile)
	}
	if cc.SSHConfig != "" {
		parts = append(parts, "-F "+cc.SSHConfig)
	}
	if cc.ConnectTimeout > 0 {
		parts = append(parts, "--connect-timeout "+time.Duration(cc.ConnectTimeout).String())
	}
	if cc.User != "" {
		parts = append(parts, "-l "+cc.User)
	}
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, " ")
}

// resolvers keeps a resolver for each configuration clients ask the daemon for, and builds it
// again when one of its files changed, so that the files as they are at the moment of a request
// decide how its hosts are reached.
type resolvers struct {
	g      *globals // the daemon's own flags: what a request without a configuration gets
	paths  config.Paths
	logger *slog.Logger

	// mu protects entries.
	mu      sync.Mutex
	entries map[proto.ClientConfig]*cachedResolver
}

type cachedResolver struct {
	stamp string
	r     *resolver
	err   error
}

// stamp returns what changes when a file cc reads changes: config.toml (or the files laid
// over each other) and the ssh_config file named by -F. The ssh_config files themselves are
// watched by the Dialer.
func stamp(cc proto.ClientConfig) string {
	files := config.ConfigFiles()
	if cc.ConfigFile != "" {
		files = []string{cc.ConfigFile}
	}
	var b strings.Builder
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.WriteString("-;")
			continue
		}
		fmt.Fprintf(&b, "%d.%d.%v;", st.Size(), st.ModTime().UnixNano(), st.Sys())
	}
	return b.String()
}

// resolveFor is daemon.Options.ResolveFor.
func (rs *resolvers) resolveFor(cc proto.ClientConfig, host string) (daemon.Host, error) {
	if cc == (proto.ClientConfig{}) {
		cc = *rs.g.clientConfig()
	}
	r, err := rs.get(cc)
	if err != nil {
		return daemon.Host{}, err
	}
	return r.resolve(host)
}

func (rs *resolvers) get(cc proto.ClientConfig) (*resolver, error) {
	st := stamp(cc)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if e := rs.entries[cc]; e != nil && e.stamp == st {
		return e.r, e.err
	}
	g := *rs.g
	g.configFile, g.sshConfig, g.connectTimeout = cc.ConfigFile, cc.SSHConfig, time.Duration(cc.ConnectTimeout)
	g.loginUser = cc.User
	e := &cachedResolver{stamp: st}
	cfg, err := g.loadConfig()
	if err != nil {
		e.err = err
	} else {
		e.r = newResolver(cfg, rs.paths, g.sshDialer(cfg, func(msg string) { rs.logger.Warn(msg) }), rs.logger)
		e.r.user = g.loginUser
		e.r.source = describe(cc)
	}
	if rs.entries == nil {
		rs.entries = map[proto.ClientConfig]*cachedResolver{}
	}
	rs.entries[cc] = e
	return e.r, e.err
}

// reload forgets every resolver, and the files their SSH clients read, so that the next
// request reads every configuration file again.
func (rs *resolvers) reload() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.entries = nil
	return nil
}
