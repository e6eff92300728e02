package shoaltest

import (
	"os/exec"
	"strings"
)

// unameSM returns `uname -sm` of this machine.
func unameSM() string {
	out, _ := exec.Command("uname", "-sm").Output()
	return strings.TrimSpace(string(out))
}
