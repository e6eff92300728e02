package openssh_test

import (
	"os/exec"
	"testing"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/openssh"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

func TestConformance(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh binary")
	}
	shoaltest.TransportSuite(t, func(t *testing.T, e shoaltest.SuiteEnv) transport.Transport {
		return openssh.New(openssh.Options{ConfigFile: e.SSHConfig, Source: e.Source})
	})
}
