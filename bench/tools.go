package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// remoteCmd is what every tool runs on every host: date, then a marker naming the host
// (sshd sets BENCH_HOST per host), so the harness can count which hosts really answered.
const remoteCmd = `date; echo BENCHOK-$BENCH_HOST`

// tool is one way of running a command on N hosts.
type tool struct {
	name string
	peer bool // a peer (pdsh, clush, pssh, Ansible, ssh loop) rather than shoal or a floor
	// cmd returns the invocation for n hosts; run counts the timed runs of this tool so far.
	cmd func(n, run int) invocation
	// before runs untimed before each invocation (e.g. remove the agents for first contact).
	before func(n int) error
	// after runs untimed after each invocation and returns CPU seconds spent by processes that
	// escaped the tool's process tree (e.g. ssh ControlPersist masters), which it then stops.
	after func() float64
	// extraPids lists resident processes whose CPU and memory count for this tool (the shoal daemon).
	extraPids func() []int
	// check verifies the run's effect; the default counts the hosts' markers in the output.
	check func(out []byte, n int) error
}

// shoalFanout is the fan-out given to shoal: at least every N measured, so full fan-out.
const shoalFanout = 2000

// kit holds the paths every tool shares.
type kit struct {
	work  string
	fl    *fleet
	shoal string // the shoal binary
}

// hostsFile writes (once) a file with hosts 1..n, one a line, and returns its path.
func (k *kit) hostsFile(n int) string {
	p := filepath.Join(k.work, fmt.Sprintf("hosts-%d.txt", n))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(hostName(i))
		b.WriteByte('\n')
	}
	os.WriteFile(p, []byte(b.String()), 0o644)
	return p
}

// inventory writes (once) an Ansible inventory with hosts 1..n and returns its path.
func (k *kit) inventory(n int) string {
	p := filepath.Join(k.work, fmt.Sprintf("inventory-%d.ini", n))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	var b strings.Builder
	b.WriteString("[fleet]\n")
	for i := 1; i <= n; i++ {
		b.WriteString(hostName(i))
		b.WriteByte('\n')
	}
	b.WriteString("[fleet:vars]\nansible_python_interpreter=/usr/bin/python3\n")
	os.WriteFile(p, []byte(b.String()), 0o644)
	return p
}

// ansibleCfg writes an ansible.cfg whose ssh_args are Ansible's defaults plus our ssh_config.
func (k *kit) ansibleCfg(name, persist string) string {
	p := filepath.Join(k.work, name)
	cfg := fmt.Sprintf(`[defaults]
host_key_checking = True
retry_files_enabled = False
deprecation_warnings = False
[ssh_connection]
ssh_args = -F %s -C -o ControlMaster=auto -o ControlPersist=%s
`, k.fl.sshConfig, persist)
	os.WriteFile(p, []byte(cfg), 0o644)
	return p
}

// shoalEnv is the environment of every shoal invocation: its own XDG directories.
func (k *kit) shoalEnv() []string {
	x := filepath.Join(k.work, "xdg")
	for _, d := range []string{"config", "state", "cache", "run", "data"} {
		os.MkdirAll(filepath.Join(x, d), 0o700)
	}
	// Full fan-out (shoal's default is 64) and the fleet's ssh_config, also for a daemon that
	// `shoal daemon start` spawns without our -F.
	os.MkdirAll(filepath.Join(x, "config", "shoal"), 0o700)
	cfg := fmt.Sprintf("fanout = %d\n\n[ssh]\nssh_config = %q\nconnect_timeout = \"30s\"\n", shoalFanout, k.fl.sshConfig)
	os.WriteFile(filepath.Join(x, "config", "shoal", "config.toml"), []byte(cfg), 0o600)
	return []string{
		"XDG_CONFIG_HOME=" + filepath.Join(x, "config"),
		"XDG_STATE_HOME=" + filepath.Join(x, "state"),
		"XDG_CACHE_HOME=" + filepath.Join(x, "cache"),
		"XDG_DATA_HOME=" + filepath.Join(x, "data"),
		"XDG_RUNTIME_DIR=" + filepath.Join(x, "run"),
		"SSH_AUTH_SOCK=",
	}
}

// peers returns the peer tools running cmd on every host.
func (k *kit) peers(cmd string) []*tool {
	pdshEnv := []string{"PDSH_SSH_ARGS_APPEND=-F " + k.fl.sshConfig, "SSH_AUTH_SOCK="}
	cpBase := filepath.Join(k.work, "ansible-cp")
	coldCfg := k.ansibleCfg("ansible-cold.cfg", "60s")
	ansibleCold := &tool{name: "ansible", peer: true}
	ansibleCold.cmd = func(n, run int) invocation {
		return invocation{
			argv: []string{"ansible", "fleet", "-i", k.inventory(n), "-f", fmt.Sprint(n), "-m", "shell", "-a", cmd},
			env: []string{"ANSIBLE_CONFIG=" + coldCfg, "SSH_AUTH_SOCK=", "ANSIBLE_NOCOLOR=1",
				"ANSIBLE_SSH_CONTROL_PATH_DIR=" + filepath.Join(cpBase, fmt.Sprintf("cold-%d-%d", n, run))},
		}
	}
	// Each cold run gets a fresh control directory; its masters are stopped afterwards so the
	// next run is cold too, and their CPU is added to the run's.
	ansibleCold.after = func() float64 { return stopMasters(filepath.Join(cpBase, "cold-")) }
	return []*tool{
		{name: "pdsh", peer: true, cmd: func(n, _ int) invocation {
			return invocation{argv: []string{"pdsh", "-R", "ssh", "-f", fmt.Sprint(n), "-w", hostRange(n), cmd}, env: pdshEnv}
		}},
		{name: "clush", peer: true, cmd: func(n, _ int) invocation {
			return invocation{argv: []string{"clush", "-f", fmt.Sprint(n), "-w", hostRange(n), "-o", "-F " + k.fl.sshConfig, cmd},
				env: []string{"SSH_AUTH_SOCK="}}
		}},
		{name: "pssh", peer: true, cmd: func(n, _ int) invocation {
			return invocation{argv: []string{"parallel-ssh", "-h", k.hostsFile(n), "-p", fmt.Sprint(n), "-t", "0",
				"-x", "-F " + k.fl.sshConfig, "-i", cmd}, env: []string{"SSH_AUTH_SOCK="}}
		}},
		ansibleCold,
		{name: "ssh-loop", peer: true, cmd: func(n, _ int) invocation {
			return invocation{argv: []string{"bash", "-c",
				`for h in $(cat "$1"); do ssh -F "$2" "$h" "$3" & done; wait`, "loop", k.hostsFile(n), k.fl.sshConfig, cmd},
				env: []string{"SSH_AUTH_SOCK="}}
		}},
	}
}

// ansibleWarm returns Ansible with ControlPersist masters kept from a warm-up run.
func (k *kit) ansibleWarm(cmd string) *tool {
	cfg := k.ansibleCfg("ansible-warm.cfg", "900s")
	dir := filepath.Join(k.work, "ansible-cp", "warm")
	return &tool{name: "ansible-cp", peer: true,
		cmd: func(n, _ int) invocation {
			return invocation{
				argv: []string{"ansible", "fleet", "-i", k.inventory(n), "-f", fmt.Sprint(n), "-m", "shell", "-a", cmd},
				env:  []string{"ANSIBLE_CONFIG=" + cfg, "SSH_AUTH_SOCK=", "ANSIBLE_NOCOLOR=1", "ANSIBLE_SSH_CONTROL_PATH_DIR=" + dir},
			}
		},
		extraPids: func() []int { return findByCmdline(dir) },
	}
}

// floorLocal starts n local `bash -c CMD` processes at once and waits for them.
func floorLocal(cmd string) *tool {
	return &tool{name: "floor-local", cmd: func(n, _ int) invocation {
		return invocation{argv: []string{"bash", "-c",
			`for ((i = 1; i <= $1; i++)); do printf -v h 'h%03d' "$i"; BENCH_HOST=$h bash -c "$2" & done; wait`, "floor", fmt.Sprint(n), cmd}}
	}}
}

// findByCmdline returns the PIDs of processes whose command line contains s.
func findByCmdline(s string) []int {
	var pids []int
	self := os.Getpid()
	for _, p := range listPids() {
		if p != self && strings.Contains(cmdline(p), s) {
			pids = append(pids, p)
		}
	}
	return pids
}

// stopMasters kills the ssh ControlPersist masters whose command line contains prefix
// (they were started by an Ansible run of this harness) and returns the CPU they used.
func stopMasters(prefix string) float64 {
	var cpu float64
	for _, p := range findByCmdline(prefix) {
		if st, err := readStat(p); err == nil && st.comm == "ssh" {
			cpu += procCPU(p)
			syscall.Kill(p, syscall.SIGTERM)
		}
	}
	return cpu
}
