package agent

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-sh/shoal/internal/proto"
)

// info gathers host facts. Anything that cannot be read is left zero.
func (s *server) info() *proto.Info {
	in := &proto.Info{
		Hostname:     hostTag(),
		OS:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		CPUs:         runtime.NumCPU(),
		Version:      s.opts.Version,
		BinarySHA256: s.opts.BinarySHA256,
		Clock:        s.now().UnixNano(),
		AgentID:      s.opts.AgentID,
		PID:          os.Getpid(),
		StateDir:     s.opts.StateDir,
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		in.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.ParseUint(f[1], 10, 64)
			switch f[0] {
			case "MemTotal:":
				in.MemTotal = v * 1024
			case "MemAvailable:":
				in.MemAvailable = v * 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		for i := 0; i < 3 && i < len(f); i++ {
			in.Load[i], _ = strconv.ParseFloat(f[i], 64)
		}
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if sec, err := strconv.ParseFloat(f[0], 64); err == nil {
				in.Uptime = int64(sec * float64(time.Second))
			}
		}
	}
	s.mu.Lock()
	in.Running = s.running
	in.Queued = s.accepted - s.running
	s.mu.Unlock()
	return in
}
