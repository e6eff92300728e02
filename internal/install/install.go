package install

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
)

// DefaultDir is where the agent is installed when the target names no directory.
const DefaultDir = "~/.cache/shoal"

// Binary is one agent binary on this machine.
type Binary struct {
	Path string
	Hash string // hex SHA-256 of the file
	Size int64
	OS   string // GOOS
	Arch string // GOARCH
}

// Name returns the file name of the binary once installed: agent-<first 16 hex of its hash>.
func (b *Binary) Name() string { return "agent-" + b.Hash[:16] }

// Source finds agent binaries: the running executable for its own platform, and
// shoal-<os>-<arch> files in PlatformDir for the others.
type Source struct {
	// Self is the binary for this machine's platform; empty means os.Executable.
	Self string
	// PlatformDir holds shoal-<os>-<arch> binaries for other platforms (`make release` output).
	PlatformDir string
	// HashCacheDir keeps the binaries' hashes across processes (fsutil.CachedHash), so a
	// command does not read its whole binary on every start; empty means
	// <os.UserCacheDir>/shoal, "-" means no cache on disk.
	HashCacheDir string
	// Compression chooses how UploadFor sends a binary: CompressAuto (the default, for ""),
	// CompressGzip, CompressZstd or CompressNone.
	Compression string

	// executable stands in for os.Executable in tests.
	executable func() (string, error)

	// mu protects the following.
	mu    sync.Mutex
	cache map[string]Binary     // by path, valid while size and mtime match
	packs map[string]*packEntry // by hash and format suffix
}

// packEntry is one binary compressed for the wire, made once.
type packEntry struct {
	once sync.Once
	data []byte
	err  error
}

// Platforms lists the platforms shoal builds for, as GOOS/GOARCH.
var Platforms = [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

// NoBinaryError says no agent binary exists for a host's platform.
type NoBinaryError struct {
	OS, Arch string
	Uname    string // what the host reported
	Dir      string // where it was looked for
	// Dynamic is the running executable when it would have been the binary but is dynamically
	// linked and carries no agent (a cgo build): it needs this machine's C library, which an
	// older host lacks, so it is never uploaded.
	Dynamic string
}

func (e *NoBinaryError) Error() string {
	plat := e.OS + "/" + e.Arch
	if e.OS == "" {
		plat = fmt.Sprintf("%q (unsupported)", e.Uname)
		return fmt.Sprintf("no shoal agent for platform %s; shoal runs on %s", plat, platformList())
	}
	if e.Dynamic != "" {
		where := "or set [agent] platform_dir to a directory holding one"
		if e.Dir != "" {
			where = "or put one in " + e.Dir
		}
		return fmt.Sprintf("no shoal agent for %s: %s is dynamically linked (a cgo build) and carries no agent, "+
			"so it would not run on a host with an older C library and is not uploaded; install a static shoal "+
			"(CGO_ENABLED=0 go install github.com/shoal-sh/shoal/cmd/shoal@latest, or scripts/build), "+
			"%s as shoal-%s-%s", plat, e.Dynamic, where, e.OS, e.Arch)
	}
	where := "configure a platform directory (agent_dir) holding it"
	if e.Dir != "" {
		where = "put it in " + e.Dir
	}
	return fmt.Sprintf("no shoal agent binary for %s: build shoal-%s-%s (make release, or "+
		"GOOS=%s GOARCH=%s go build -o shoal-%s-%s ./cmd/shoal) and %s",
		plat, e.OS, e.Arch, e.OS, e.Arch, e.OS, e.Arch, where)
}

func platformList() string {
	var s []string
	for _, p := range Platforms {
		s = append(s, p[0]+"/"+p[1])
	}
	return strings.Join(s, ", ")
}

// Platform maps `uname -sm` output ("Linux x86_64") to GOOS and GOARCH; ok is false for a
// platform shoal does not build for.
func Platform(uname string) (goos, goarch string, ok bool) {
	f := strings.Fields(uname)
	if len(f) != 2 {
		return "", "", false
	}
	switch f[0] {
	case "Linux":
		goos = "linux"
	case "Darwin":
		goos = "darwin"
	default:
		return "", "", false
	}
	switch f[1] {
	case "x86_64", "amd64":
		goarch = "amd64"
	case "aarch64", "arm64":
		goarch = "arm64"
	default:
		return "", "", false
	}
	return goos, goarch, true
}

// unames returns the `uname -sm` strings of a platform.
func unames(goos, goarch string) []string {
	s := map[string]string{"linux": "Linux", "darwin": "Darwin"}[goos]
	switch goarch {
	case "amd64":
		return []string{s + " x86_64", s + " amd64"}
	case "arm64":
		return []string{s + " aarch64", s + " arm64"}
	}
	return nil
}

// For returns the binary for a platform: Self when it is this machine's platform, else
// PlatformDir/shoal-<os>-<arch>. A missing binary is a *NoBinaryError. The running executable
// (Self empty) is never the binary when it is dynamically linked and carries no agent: a host
// with an older C library could not run it, so PlatformDir is tried instead.
func (s *Source) For(goos, goarch string) (Binary, error) {
	var dynamic string
	if goos == runtime.GOOS && goarch == runtime.GOARCH {
		self := s.Self
		if self == "" {
			executable := s.executable
			if executable == nil {
				executable = os.Executable
			}
			exe, err := executable()
			if err != nil {
				return Binary{}, fmt.Errorf("finding own executable: %w", err)
			}
			self = exe
		}
		b, err := s.hashed(self, goos, goarch)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Our own binary is gone (upgraded under us?): the platform directory may have one.
		case err != nil:
			return b, err
		case s.Self == "" && b.Path == self && IsDynamic(self):
			dynamic = self
		default:
			return b, nil
		}
	}
	if s.PlatformDir == "" {
		return Binary{}, &NoBinaryError{OS: goos, Arch: goarch, Dynamic: dynamic}
	}
	p := filepath.Join(s.PlatformDir, "shoal-"+goos+"-"+goarch)
	b, err := s.hashed(p, goos, goarch)
	if errors.Is(err, os.ErrNotExist) {
		return Binary{}, &NoBinaryError{OS: goos, Arch: goarch, Dir: s.PlatformDir, Dynamic: dynamic}
	}
	return b, err
}

// IsDynamic reports whether the file at path is an ELF executable that asks for a dynamic
// loader (PT_INTERP), as a cgo build does; a static build, a script or an unreadable file is
// not. macOS executables (Mach-O) are always linked to the system library, which keeps its ABI,
// so they are not dynamic in this sense.
func IsDynamic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// Available returns the binaries of every platform that has one, this machine's first.
func (s *Source) Available() []Binary {
	var out []Binary
	if b, err := s.For(runtime.GOOS, runtime.GOARCH); err == nil {
		out = append(out, b)
	}
	for _, p := range Platforms {
		if p[0] == runtime.GOOS && p[1] == runtime.GOARCH {
			continue
		}
		if b, err := s.For(p[0], p[1]); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// hashed returns the Binary at path, hashing it once per size and mtime.
func (s *Source) hashed(path, goos, goarch string) (Binary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Binary{}, fmt.Errorf("reading agent binary: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Binary{}, fmt.Errorf("agent binary %s is not a regular file", path)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	s.mu.Lock()
	b, ok := s.cache[key]
	s.mu.Unlock()
	if ok {
		if b.Path == path {
			return b, nil
		}
		if _, err := os.Stat(b.Path); err == nil {
			return b, nil
		}
		// The unpacked agent was removed (another version's prune, a cleaned cache): again.
	}
	b, err = s.load(path, goos, goarch)
	if err != nil {
		return Binary{}, err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]Binary{}
	}
	s.cache[key] = b
	s.mu.Unlock()
	return b, nil
}

// load returns the Binary for the executable at path: the agent it carries (unpacked into the
// cache directory) when it carries one, else the executable itself, hashed.
func (s *Source) load(path, goos, goarch string) (Binary, error) {
	e, ok, err := ReadEmbedded(path)
	if err != nil {
		return Binary{}, err
	}
	if ok {
		b, err := s.unpack(path, e, goos, goarch)
		if !errors.Is(err, errNoCacheDir) {
			return b, err
		}
		// Nowhere to unpack it: upload the whole executable, which runs `agent` as well.
	}
	h, n, err := fsutil.CachedHash(path, s.hashCachePath(path))
	if err != nil {
		return Binary{}, fmt.Errorf("hashing agent binary: %w", err)
	}
	return Binary{Path: path, Hash: h, Size: n, OS: goos, Arch: goarch}, nil
}

// cacheDir returns the directory of hash caches and unpacked agents, or "" for none.
func (s *Source) cacheDir() string {
	dir := s.HashCacheDir
	if dir == "-" {
		return ""
	}
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(c, "shoal")
	}
	return dir
}

// hashCachePath returns the file that caches the hash of the binary at path, or "" for none.
func (s *Source) hashCachePath(path string) string {
	dir := s.cacheDir()
	if dir == "" {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, ".hash-"+filepath.Base(abs)+"-"+hex.EncodeToString(sum[:8]))
}

// GzipLevel is the compression level of an upload. A binary is compressed once and the result
// kept on disk (Gzipped), so the level costs one compression, while every host pays for the
// bytes: the default level makes a release build 4.4 MB (BestSpeed: 4.9 MB; BestCompression
// gains 0.5% more) and decompresses as fast.
const GzipLevel = gzip.DefaultCompression

// Upload compression modes (Source.Compression, the [agent] upload_compression setting).
const (
	// CompressAuto sends zstd to hosts that have zstd, else gzip to hosts that have gzip,
	// loopback addresses included. Bytes cost sshd more than they seem to: it grows its
	// channel buffer by copying it into new memory as data outruns the command reading it, so
	// its CPU grows faster than the bytes (on this project's one-box fleet, OpenSSH receiving
	// 1 MB cost 10 ms, 3.5 MB 92 ms). A first contact of 200 loopback hosts with the 3.5 MB
	// agent-only build took 17 s raw and 13 s gzipped (1.5 MB, `gzip -dc` included), and half
	// the hosts' CPU. zstd makes it 1.45 MB, and `zstd -dc` costs a host 11 ms where `gzip -dc`
	// costs 25. Since the upload script enlarges the pipe sshd writes into (upload), raw and
	// zstd cost that fleet about the same (8.0-9.0 s against 8.1-9.4 s for 200 hosts, loaded
	// machine), but zstd sends 2.4 times fewer bytes: on a real network, the client's uplink
	// carries them all.
	CompressAuto = "auto"
	CompressGzip = "gzip" // gzip only, for hosts that have it
	CompressZstd = "zstd" // zstd only, for hosts that have it
	CompressNone = "none" // never compress: for hosts so short of CPU that decompressing is the cost
)

// CompressionModes lists the valid values of Source.Compression.
var CompressionModes = []string{CompressAuto, CompressGzip, CompressZstd, CompressNone}

// UploadFor returns the script that installs bin in dir and starts it with agentArgs (Upload,
// for Install), and the bytes to send it: the binary compressed when the mode allows it and the
// host has the tool (host: its SHOAL-MISSING marker), else nil, meaning the file at bin.Path as
// it is.
func (s *Source) UploadFor(dir string, bin Binary, host Marker, agentArgs []string) (string, []byte) {
	if s.Compression == CompressNone {
		return Upload(dir, bin, agentArgs), nil
	}
	if host.Zstd && s.Compression != CompressGzip {
		if z, err := s.Zstded(bin); err == nil {
			return UploadZstd(dir, bin, int64(len(z)), agentArgs), z
		}
	}
	if host.Gzip && s.Compression != CompressZstd {
		if gz, err := s.Gzipped(bin); err == nil {
			return UploadGzip(dir, bin, int64(len(gz)), agentArgs), gz
		}
	}
	return Upload(dir, bin, agentArgs), nil
}

// Gzipped returns bin compressed with gzip for an upload (UploadGzip). It compresses each
// binary once per Source and keeps the result in memory; concurrent callers wait for the one
// compression. The bytes are checked against bin.Hash while they are read, so a binary
// replaced since it was hashed is an error, not a wrong upload. The result is also kept in
// HashCacheDir/upload/agent-<hash>.gz, so the next process (`shoal run --no-daemon`) reuses it
// after checking its gzip trailer (CRC-32 and size) against the binary.
func (s *Source) Gzipped(bin Binary) ([]byte, error) {
	return s.packed(bin, ".gz", gzipFile, gzipMatches)
}

// Zstded is Gzipped with zstd (UploadZstd), kept in HashCacheDir/upload/agent-<hash>.zst; a
// kept file is decompressed and checked against bin.Hash before it is reused.
func (s *Source) Zstded(bin Binary) ([]byte, error) {
	return s.packed(bin, ".zst", zstdFile, zstdMatches)
}

// packed returns bin compressed by pack, made once per Source and kept on disk with the suffix
// ext, where the next process reuses it when matches says it was made of bin.
func (s *Source) packed(bin Binary, ext string, pack func(Binary) ([]byte, error), matches func([]byte, Binary) bool) ([]byte, error) {
	s.mu.Lock()
	if s.packs == nil {
		s.packs = map[string]*packEntry{}
	}
	e := s.packs[bin.Hash+ext]
	if e == nil {
		e = &packEntry{}
		s.packs[bin.Hash+ext] = e
	}
	s.mu.Unlock()
	e.once.Do(func() {
		cache := s.packedCachePath(bin, ext)
		if cache != "" {
			if b, err := os.ReadFile(cache); err == nil && matches(b, bin) {
				e.data = b
				return
			}
		}
		e.data, e.err = pack(bin)
		if e.err == nil && cache != "" && os.MkdirAll(filepath.Dir(cache), 0o700) == nil {
			fsutil.WriteFile(cache, e.data, 0o600) // best effort: the next process compresses again
			pruneCache(filepath.Dir(cache), cache, ext, packedKeep)
		}
	})
	return e.data, e.err
}

// packedCachePath returns where bin compressed into the format of suffix ext is kept between
// processes, or "" for nowhere.
func (s *Source) packedCachePath(bin Binary, ext string) string {
	p := s.hashCachePath(bin.Path)
	if p == "" || len(bin.Hash) != 2*sha256.Size {
		return ""
	}
	return filepath.Join(filepath.Dir(p), "upload", "agent-"+bin.Hash+ext)
}

// packedKeep is how many compressed binaries of one format the cache keeps: one per platform.
var packedKeep = len(Platforms)

// pruneCache removes from dir all but the n most recently written agent-*<suffix> files (keep
// always stays): old versions would otherwise pile up, 3-10 MB each.
func pruneCache(dir, keep, suffix string, n int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type old struct {
		path string
		mod  time.Time
	}
	var files []old
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if p == keep || !strings.HasPrefix(e.Name(), "agent-") || !strings.HasSuffix(e.Name(), suffix) {
			continue
		}
		if suffix == "" && strings.Contains(e.Name(), ".") {
			continue // unpacked agents have no dot: leave temporary files to their writers
		}
		if fi, err := e.Info(); err == nil {
			files = append(files, old{p, fi.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b old) int { return b.mod.Compare(a.mod) })
	for i, o := range files {
		if i+1 >= n { // keep counts as one
			os.Remove(o.path)
		}
	}
}

// gzipMatches reports whether the gzip stream b ends with the CRC-32 and size of bin's file:
// a cheap check that b was made of this binary (the host's gzip checks the stream itself
// against that CRC, and the agent's hello checks the hash).
func gzipMatches(b []byte, bin Binary) bool {
	if len(b) < 18 || b[0] != 0x1f || b[1] != 0x8b {
		return false
	}
	f, err := os.Open(bin.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	c := crc32.NewIEEE()
	n, err := io.Copy(c, f)
	if err != nil || n != bin.Size {
		return false
	}
	tr := b[len(b)-8:]
	return binary.LittleEndian.Uint32(tr) == c.Sum32() && binary.LittleEndian.Uint32(tr[4:]) == uint32(n)
}

func gzipFile(bin Binary) ([]byte, error) {
	return compressFile(bin, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, GzipLevel) })
}

// compressFile returns the file of bin compressed by the writer newWriter makes, checking the
// bytes read against bin.Hash.
func compressFile(bin Binary, newWriter func(io.Writer) (io.WriteCloser, error)) ([]byte, error) {
	f, err := os.Open(bin.Path)
	if err != nil {
		return nil, fmt.Errorf("compressing agent binary: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	buf.Grow(int(bin.Size / 2))
	zw, err := newWriter(&buf)
	if err != nil {
		return nil, fmt.Errorf("compressing agent binary: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(zw, io.TeeReader(f, h))
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("compressing agent binary %s: %w", bin.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != bin.Size || got != bin.Hash {
		return nil, fmt.Errorf("compressing agent binary %s: it changed since it was hashed", bin.Path)
	}
	return buf.Bytes(), nil
}

// HashFile returns the hex SHA-256 and the size of a file.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hashing agent binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hashing agent binary %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dirExpr returns a shell expression for dir, with a leading ~ read as $HOME.
func dirExpr(dir string) string {
	if dir == "" {
		dir = DefaultDir
	}
	if dir == "~" {
		return `"$HOME"`
	}
	if rest, ok := strings.CutPrefix(dir, "~/"); ok {
		return `"$HOME"/` + Quote(rest)
	}
	return Quote(dir)
}

func agentExec(agentArgs []string) string {
	var b strings.Builder
	b.WriteString(`exec "$a" agent --state-dir "$d"`)
	for _, a := range agentArgs {
		b.WriteByte(' ')
		b.WriteString(Quote(a))
	}
	return b.String()
}

// hashEnv is the variable through which Upload's command passes the binary's hash to the agent
// it starts (agent.InstalledHashEnv; install does not import the agent package).
const hashEnv = "SHOAL_AGENT_HASH"

// Marker lines the commands print on stdout before the agent speaks.
const (
	markerExec    = "SHOAL-EXEC"    // SHOAL-EXEC <uname -sm>\t<agent path>
	markerMissing = "SHOAL-MISSING" // SHOAL-MISSING <uname -sm>\t<"gzip" and "zstd", those that are there>
	markerFail    = "SHOAL-FAIL"    // SHOAL-FAIL <reason>
	markerReady   = "SHOAL-READY"   // SHOAL-READY: the upload script reads the binary from here on
)

// wrap makes script run under /bin/sh whatever the user's login shell is. The script contains no
// '!' followed by anything but a space, so csh history expansion leaves it alone.
func wrap(script string) string {
	return "exec /bin/sh -c " + Quote(script)
}

// Bootstrap returns the remote command run first on every connect: it execs the installed agent
// for the host's platform when it is present, a regular executable file not writable by group or
// others, in a directory of mode 0700; otherwise it prints a SHOAL-MISSING marker with
// `uname -sm` and the decompressors there (gzip, zstd), and reads one line from stdin, an upload
// script (Install), which it runs; at end of input it exits. bins are the binaries this side
// could install (Source.Available); with none (or to force a reinstall) it always reports missing.
//
// With exactly one binary (no platform directory: the usual case) the command does not run
// uname before trying it: it checks that binary's install name and reports its platform in the
// SHOAL-EXEC line. On a host of another platform that file can only exist in a home shared with
// hosts of that platform; its exec then fails, the agent never says hello, and the caller's
// reinstall (no binaries offered) runs uname and uploads the right one.
func Bootstrap(dir string, bins []Binary, agentArgs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "d=%s; ", dirExpr(dir))
	if len(bins) == 1 && len(unames(bins[0].OS, bins[0].Arch)) > 0 {
		fmt.Fprintf(&b, `a="$d"/%s; u=%s; `, bins[0].Name(), Quote(unames(bins[0].OS, bins[0].Arch)[0]))
		b.WriteString(execIfSafe(agentArgs))
	} else if len(bins) > 0 {
		b.WriteString(`u=$(uname -sm); a=; case "$u" in `)
		for _, bin := range bins {
			for i, u := range unames(bin.OS, bin.Arch) {
				if i > 0 {
					b.WriteString("|")
				}
				b.WriteString(Quote(u))
			}
			fmt.Fprintf(&b, `) a="$d"/%s;; `, bin.Name())
		}
		b.WriteString("esac; ")
		b.WriteString(`if [ -n "$a" ]; then ` + execIfSafe(agentArgs) + `fi; `)
	}
	b.WriteString(`u=$(uname -sm); g=; command -v gzip >/dev/null 2>&1 && g=gzip; command -v zstd >/dev/null 2>&1 && g="$g zstd"; printf '` + markerMissing + ` %s\t%s\n' "$u" "$g"; `)
	// The install happens in this session: the caller sends one line, an upload script
	// (Upload, Install), and the shell runs it on the rest of stdin. End of input instead
	// means no install here.
	b.WriteString(`IFS= read -r c && eval "$c"; exit 1`)
	return wrap(b.String())
}

// execIfSafe is the part of the bootstrap that prints SHOAL-EXEC and execs the agent at $a when
// it is a regular executable file not writable by group or others in a directory $d of mode 0700.
// The test before find spares a host without the agent that process.
func execIfSafe(agentArgs []string) string {
	return `r=; [ -f "$a" ] && r=$(find "$d" "$a" -prune \( -type d -perm 700 -o -type f -perm -100 ! -perm -020 ! -perm -002 \) -print 2>/dev/null); ` +
		`case "$r" in "$d"?"$a") printf '` + markerExec + ` %s\t%s\n' "$u" "$a"; ` + agentExec(agentArgs) + `;; esac; `
}

// Upload returns the script that installs bin, one line of sh for a bootstrap that reported the
// agent missing to run (see Install): it makes the install directory, prints a SHOAL-READY
// marker, reads exactly bin.Size bytes of stdin into a temp file there, checks the size, makes
// it 0700, renames it into place (atomic, so concurrent installs to one shared home are safe),
// prints a SHOAL-EXEC marker and execs the agent on the rest of stdin.
func Upload(dir string, bin Binary, agentArgs []string) string {
	// Raw bytes carry no check of their own: the size is checked after the copy.
	return upload(dir, bin, `head -c `+strconv.FormatInt(bin.Size, 10), true, agentArgs)
}

// UploadGzip is Upload for a binary sent compressed (Source.Gzipped, gzSize bytes of it): the
// script decompresses them with `gzip -dc`, which the host has when its SHOAL-MISSING marker
// said so (Marker.Gzip), and installs as Upload does. gzip checks the stream's CRC-32 and
// length and fails on a short one, so no size check follows.
func UploadGzip(dir string, bin Binary, gzSize int64, agentArgs []string) string {
	return upload(dir, bin, `head -c `+strconv.FormatInt(gzSize, 10)+` | gzip -dc`, false, agentArgs)
}

// UploadZstd is UploadGzip for a binary sent compressed with zstd (Source.Zstded, whose frames
// carry a checksum of the content), for a host whose marker said it has zstd (Marker.Zstd).
func UploadZstd(dir string, bin Binary, zSize int64, agentArgs []string) string {
	return upload(dir, bin, `head -c `+strconv.FormatInt(zSize, 10)+` | zstd -dcq`, false, agentArgs)
}

// upload returns the upload script; recv writes the binary to its stdout, and checkSize
// checks the size of what it wrote.
//
// Every process counts: on a first contact each host runs this once, and a fork and exec costs
// it about 1.3 ms of CPU. So the temporary file is named here (random, so hosts sharing a home
// never pick the same one) and created with noclobber instead of by mktemp, the directory is
// created or chmod-ed, not both, and the platform printed is the binary's, not uname's.
//
// The SHOAL-READY marker comes just before the receiving processes start, and the caller sends
// nothing before it: bytes that reach sshd while nothing reads them pile up in its channel
// buffer, which it grows by reallocating, at several times the CPU of the transfer itself.
func upload(dir string, bin Binary, recv string, checkSize bool, agentArgs []string) string {
	var rnd [8]byte
	rand.Read(rnd[:])
	plat := bin.OS + " " + bin.Arch
	if u := unames(bin.OS, bin.Arch); len(u) > 0 {
		plat = u[0]
	}
	size := ""
	if checkSize {
		size = `[ $(wc -c < "$t") -eq ` + strconv.FormatInt(bin.Size, 10) + ` ] && `
	}
	grow := ""
	if bin.OS == "linux" {
		grow = growPipe
	}
	return fmt.Sprintf(`d=%s; a="$d"/%s; t="$d"/.agent-%s; umask 077; set -C; w=; `, dirExpr(dir), bin.Name(), hex.EncodeToString(rnd[:])) +
		`{ if [ -d "$d" ]; then chmod 700 "$d"; else mkdir -p "$d"; fi; } && w=1 && ` + grow +
		`printf '` + markerReady + `\n' && ` + recv + ` > "$t" && ` +
		size + `chmod 700 "$t" && mv -f "$t" "$a" && ` +
		`{ printf '` + markerExec + ` %s\t%s\n' ` + Quote(plat) + ` "$a"; ` +
		// The agent believes this hash instead of reading the file it was just written to.
		hashEnv + `=` + bin.Hash + `; export ` + hashEnv + `; set +C; ` + agentExec(agentArgs) + `; }; ` +
		`[ -n "$w" ] && rm -f "$t"; printf '` + markerFail + ` could not write %s\n' "$a"; exit 1`
}

// growPipe enlarges the pipe on stdin, where sshd writes what it receives, to 2 MiB, else
// 1 MiB (Linux's F_SETPIPE_SZ, with perl, which most Linux hosts have; without it nothing
// changes). Behind the default 64 KiB, sshd holds the upload in its channel buffer, which it
// grows by copying at every packet: that costs a host more CPU than the rest of the install.
const growPipe = `{ command -v perl >/dev/null 2>&1 && perl -e 'fcntl(STDIN, 1031, 2 << 20) || fcntl(STDIN, 1031, 1 << 20)' 2>/dev/null; :; } && `

// ErrMultiLine means an upload script cannot be sent as one line (an agent argument holds a
// newline).
var ErrMultiLine = errors.New("the upload script has a newline (in an agent argument?)")

// Install runs an upload script (Upload, Source.UploadFor) in the session of a bootstrap that
// printed SHOAL-MISSING, rw being that session's stdio: it sends the script as one line, waits
// for SHOAL-READY, sends body, or the file at bin.Path when body is nil, and returns the marker
// that follows. After a SHOAL-EXEC marker the agent speaks on rw; after anything else, or an
// error, the caller closes the session.
func Install(rw io.ReadWriter, script string, bin Binary, body []byte) (Marker, error) {
	if strings.ContainsAny(script, "\n\r") {
		return Marker{}, ErrMultiLine
	}
	if _, err := io.WriteString(rw, script+"\n"); err != nil {
		return Marker{}, fmt.Errorf("sending the upload script: %w", err)
	}
	m, err := ReadMarker(rw)
	if err != nil {
		return Marker{}, fmt.Errorf("waiting for the host to receive: %w", err)
	}
	if !m.Ready {
		return m, hostSays(m)
	}
	if err := sendBinary(rw, bin.Path, body); err != nil {
		return Marker{}, err
	}
	if m, err = ReadMarker(rw); err != nil {
		return Marker{}, fmt.Errorf("waiting for the agent to start: %w", err)
	}
	if !m.Exec {
		return m, hostSays(m)
	}
	return m, nil
}

// hostSays is the error for a marker other than the one an upload waited for.
func hostSays(m Marker) error {
	if m.Fail != "" {
		return fmt.Errorf("the host says: %s", m.Fail)
	}
	return fmt.Errorf("unexpected marker from the upload script: %+v", m)
}

// sendBinary writes body to w, or when body is nil copies the file at path.
func sendBinary(w io.Writer, path string, body []byte) error {
	if body != nil {
		if _, err := w.Write(body); err != nil {
			return fmt.Errorf("uploading agent: %w", err)
		}
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("uploading agent: %w", err)
	}
	defer f.Close()
	// Writes of 256 KiB go to an SSH stream in 32 KiB packets (sshx.Stream.Write). The struct
	// hides the file's WriteTo, which would copy through 32 KiB writes instead.
	if _, err := io.CopyBuffer(w, struct{ io.Reader }{f}, make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("uploading agent: %w", err)
	}
	return nil
}

// Marker is what a bootstrap or upload command printed.
type Marker struct {
	Exec      bool   // the agent was started; the frames follow
	Uname     string // `uname -sm` of the host
	AgentPath string // the agent's path on the host, when Exec
	Fail      string // why an upload failed, when not empty
	Gzip      bool   // the host has gzip, so an upload may be compressed (UploadGzip)
	Zstd      bool   // the host has zstd (UploadZstd)
	Ready     bool   // an upload script waits for the binary
}

// MaxMarkerBytes bounds what ReadMarker reads before giving up (shell start-up files may print).
const MaxMarkerBytes = 16 << 10

// ErrNoMarker means the remote command ended or printed too much without a marker line.
var ErrNoMarker = errors.New("no shoal marker in the remote command's output")

// ReadMarker reads r a byte at a time (so nothing after the marker line is consumed) until a
// marker line, skipping other lines (login scripts may print), at most MaxMarkerBytes.
func ReadMarker(r io.Reader) (Marker, error) {
	var line []byte
	var one [1]byte
	for total := 0; total < MaxMarkerBytes; total++ {
		n, err := r.Read(one[:])
		if n == 1 {
			if one[0] != '\n' {
				if len(line) < 4096 {
					line = append(line, one[0])
				}
				continue
			}
			if m, ok := parseMarker(string(line)); ok {
				return m, nil
			}
			line = line[:0]
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(line) > 0 {
					return Marker{}, fmt.Errorf("%w (last line %q)", ErrNoMarker, line)
				}
				return Marker{}, ErrNoMarker
			}
			return Marker{}, fmt.Errorf("reading marker: %w", err)
		}
	}
	return Marker{}, fmt.Errorf("%w in the first %d bytes", ErrNoMarker, MaxMarkerBytes)
}

func parseMarker(line string) (Marker, bool) {
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case markerExec:
		u, p, ok := strings.Cut(rest, "\t")
		return Marker{Exec: true, Uname: u, AgentPath: p}, ok
	case markerMissing:
		u, tools, _ := strings.Cut(rest, "\t")
		f := strings.Fields(tools)
		return Marker{Uname: u, Gzip: slices.Contains(f, "gzip"), Zstd: slices.Contains(f, "zstd")}, true
	case markerFail:
		return Marker{Fail: rest}, true
	case markerReady:
		return Marker{Ready: true}, line == markerReady
	}
	return Marker{}, false
}

// Match returns, among bins, the binary for a host that reported uname.
func Match(bins []Binary, uname string) (Binary, bool) {
	goos, goarch, ok := Platform(uname)
	if !ok {
		return Binary{}, false
	}
	i := slices.IndexFunc(bins, func(b Binary) bool { return b.OS == goos && b.Arch == goarch })
	if i < 0 {
		return Binary{}, false
	}
	return bins[i], true
}
