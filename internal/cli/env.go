package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/proto"
)

// maxEnvFile bounds what --env-file reads.
const maxEnvFile = 1 << 20

// runEnv is the environment a command gets on every host, beside the SHOAL_ variables.
type runEnv struct {
	vars   map[string]string
	masked []string // names from --env-file: secrets, shown as *** in the audit log
}

// environment gathers [run] env, then --env-file, then --env (a later one wins).
func (rf *runFlags) environment(cfg *config.Config) (runEnv, error) {
	e := runEnv{vars: map[string]string{}}
	if cfg != nil {
		maps.Copy(e.vars, cfg.Run.Env)
	}
	if rf.envFile != "" {
		b, err := os.ReadFile(rf.envFile)
		if err != nil {
			return e, fmt.Errorf("reading --env-file: %w", err)
		}
		if len(b) > maxEnvFile {
			return e, fmt.Errorf("reading --env-file %s: more than %d bytes", rf.envFile, maxEnvFile)
		}
		file, err := parseEnvFile(b)
		if err != nil {
			return e, fmt.Errorf("reading --env-file %s: %w", rf.envFile, err)
		}
		for k, v := range file {
			e.vars[k] = v
			e.masked = append(e.masked, k)
		}
	}
	for _, kv := range rf.env {
		k, v, err := parseEnvPair(kv)
		if err != nil {
			return e, fmt.Errorf("reading --env: %w", err)
		}
		e.vars[k] = v
		e.masked = slices.DeleteFunc(e.masked, func(m string) bool { return m == k })
	}
	slices.Sort(e.masked)
	if len(e.vars) == 0 {
		e.vars = nil
	}
	return e, nil
}

// parseEnvPair splits NAME=VALUE.
func parseEnvPair(kv string) (string, string, error) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return "", "", fmt.Errorf("%q: want NAME=VALUE", kv)
	}
	if !config.ValidEnvName(k) {
		return "", "", fmt.Errorf("%q: %q is not a variable name (letters, digits and _, not starting with a digit)", kv, k)
	}
	return k, v, nil
}

// parseEnvFile reads NAME=VALUE lines as a shell's or docker's env file has them: blank lines
// and lines starting with # are skipped, "export " before NAME is allowed, and a value in
// matching single or double quotes loses them (nothing inside is expanded).
func parseEnvFile(b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxEnvFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, err := parseEnvPair(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// sudoSettings says whether commands go through sudo, and as whom (empty: root).
func (rf *runFlags) sudoSettings(cfg *config.Config) (bool, string) {
	on, user := rf.sudo || rf.sudoUser != "", rf.sudoUser
	if cfg != nil {
		on = on || cfg.Run.Sudo
		if user == "" {
			user = cfg.Run.SudoUser
		}
	}
	if user == "" {
		user = "root"
	}
	return on, user
}

// terminal is the pseudo-terminal --pty asks for: the size of w when it is a terminal (else
// 24×80) and $TERM.
func (rf *runFlags) terminal(w io.Writer) *proto.PTY {
	if !rf.pty {
		return nil
	}
	p := &proto.PTY{Term: os.Getenv("TERM"), Rows: 24, Cols: 80}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, rows, err := term.GetSize(int(f.Fd())); err == nil && rows > 0 && cols > 0 {
			p.Rows, p.Cols = rows, cols
		}
	}
	return p
}
