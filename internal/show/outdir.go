package show

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/render"
)

// outFileMode is the mode of the files --outdir and --errdir write: command output may hold secrets.
const outFileMode = 0o600

// writeHostFiles writes r into View's OutDir and ErrDir, each file replaced atomically:
// OutDir/HOST (stdout), OutDir/HOST.status (the result as JSON, without the output) and
// HOST.err (stderr) in ErrDir, or in OutDir when ErrDir is empty.
func (v *View) writeHostFiles(r proto.HostResult) error {
	if v.OutDir == "" && v.ErrDir == "" {
		return nil
	}
	if r.Host == "" || r.Host == "." || r.Host == ".." || strings.ContainsAny(r.Host, "/\\\x00") || !filepath.IsLocal(r.Host) {
		return fmt.Errorf("host name %q cannot be a file name", r.Host)
	}
	if v.OutDir != "" {
		if err := fsutil.ReplaceFile(filepath.Join(v.OutDir, r.Host), r.Stdout, outFileMode); err != nil {
			return err
		}
		var b bytes.Buffer
		if err := render.WriteJSONStatus(&b, r); err != nil {
			return err
		}
		if err := fsutil.ReplaceFile(filepath.Join(v.OutDir, r.Host+".status"), b.Bytes(), outFileMode); err != nil {
			return err
		}
	}
	errDir := v.ErrDir
	if errDir == "" {
		errDir = v.OutDir
	}
	return fsutil.ReplaceFile(filepath.Join(errDir, r.Host+".err"), r.Stderr, outFileMode)
}

// MakeOutDirs creates OutDir and ErrDir, when set, before a run writes into them.
func (v *View) MakeOutDirs() error {
	for _, d := range []string{v.OutDir, v.ErrDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating the output directory: %w", err)
		}
	}
	return nil
}
