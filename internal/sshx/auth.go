package sshx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// PromptFunc asks the user for a secret (a key passphrase) and returns it. It is called at most
// once per key file for the life of a Dialer.
type PromptFunc func(prompt string) ([]byte, error)

// identities loads identity files once and keeps the signers for every later connection.
type identities struct {
	prompt PromptFunc

	// mu protects the following; it is held while prompting so a passphrase is asked once.
	mu    sync.Mutex
	files map[string]*identity
}

// identity is one identity file: its public key, and the signer once it is decrypted.
type identity struct {
	path   string
	pub    ssh.PublicKey // nil when the file has no readable key
	signer ssh.Signer    // nil until decrypted
	raw    []byte        // the encrypted PEM, kept until it is decrypted
	err    error         // why it cannot be used (wrong passphrase, no prompt)
}

// load returns the identity for path, reading it the first time. A missing file gives nil.
func (ids *identities) load(path string) *identity {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if id, ok := ids.files[path]; ok {
		return id
	}
	if ids.files == nil {
		ids.files = map[string]*identity{}
	}
	var id *identity
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		id = &identity{path: path, err: err}
	default:
		id = &identity{path: path}
		s, err := ssh.ParsePrivateKey(raw)
		var pme *ssh.PassphraseMissingError
		switch {
		case err == nil:
			id.signer, id.pub = s, s.PublicKey()
		case errors.As(err, &pme):
			id.raw, id.pub = raw, pme.PublicKey
			if id.pub == nil {
				id.pub = readPub(path + ".pub")
			}
		default:
			id.err = fmt.Errorf("reading identity %s: %w", path, err)
		}
	}
	ids.files[path] = id
	return id
}

func readPub(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return k
}

// decrypt returns the signer of id, asking for the passphrase the first time.
func (ids *identities) decrypt(id *identity) (ssh.Signer, error) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if id.signer != nil || id.err != nil {
		return id.signer, id.err
	}
	if ids.prompt == nil {
		id.err = &keyError{fmt.Errorf("identity %s needs a passphrase and no terminal is available to ask it", id.path)}
		return nil, id.err
	}
	pass, err := ids.prompt(fmt.Sprintf("Enter passphrase for key '%s': ", id.path))
	if err != nil {
		id.err = &keyError{fmt.Errorf("asking passphrase for %s: %w", id.path, err)}
		return nil, id.err
	}
	s, err := ssh.ParsePrivateKeyWithPassphrase(id.raw, pass)
	clear(pass)
	if err != nil {
		id.err = &keyError{fmt.Errorf("decrypting identity %s: %w", id.path, err)}
		return nil, id.err
	}
	id.signer, id.raw = s, nil
	return s, nil
}

// lazySigner is an encrypted identity: its public key is offered to the server, and the
// passphrase is asked only when the server accepts the key and a signature is needed.
type lazySigner struct {
	ids *identities
	id  *identity
}

func (l *lazySigner) PublicKey() ssh.PublicKey { return l.id.pub }

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s, err := l.ids.decrypt(l.id)
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, data)
}

func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s, err := l.ids.decrypt(l.id)
	if err != nil {
		return nil, err
	}
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return s.Sign(rand, data)
}

func (l *lazySigner) Algorithms() []string {
	if l.id.pub.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{l.id.pub.Type()}
}

// signers returns the keys to offer for h, in OpenSSH's order: agent keys (only those matching an
// identity file under IdentitiesOnly), then identity files. agentConn, when not nil, is the
// ssh-agent connection; the caller closes it after the handshake.
func (ids *identities) signers(h *HostConfig, agentConn net.Conn) ([]ssh.Signer, error) {
	var files []*identity
	for _, p := range h.IdentityFiles {
		if id := ids.load(p); id != nil && id.pub != nil {
			files = append(files, id)
		}
	}
	var as []ssh.Signer
	if agentConn != nil {
		var err error
		if as, err = agent.NewClient(agentConn).Signers(); err != nil {
			return nil, fmt.Errorf("listing ssh-agent keys: %w", err)
		}
	}
	var keys, out []ssh.Signer // every private key at hand; what is offered
	offered := map[string]bool{}
	for _, s := range as {
		m := s.PublicKey().Marshal()
		if c, ok := s.PublicKey().(*ssh.Certificate); ok {
			m = c.Key.Marshal() // a certificate the agent holds, for one of its keys
		} else {
			keys = append(keys, s)
		}
		if h.IdentitiesOnly && !hasKey(files, m) {
			continue
		}
		out = append(out, s)
		offered[string(s.PublicKey().Marshal())] = true
	}
	ids.mu.Lock()
	var fileSigners []ssh.Signer
	for _, id := range files {
		var s ssh.Signer = &lazySigner{ids: ids, id: id}
		if id.signer != nil {
			s = id.signer
		}
		keys = append(keys, s)
		if !offered[string(id.pub.Marshal())] {
			fileSigners = append(fileSigners, s)
		}
	}
	ids.mu.Unlock()
	// Certificates from CertificateFile, and each identity file's "-cert.pub" as ssh loads it,
	// go first, each with the private key it certifies.
	var certs []ssh.Signer
	certFiles := slices.Clone(h.CertificateFiles)
	for _, p := range h.IdentityFiles {
		certFiles = append(certFiles, p+"-cert.pub")
	}
	for _, p := range certFiles {
		c := readCert(p)
		if c == nil || offered[string(c.Marshal())] {
			continue
		}
		for _, k := range keys {
			if bytes.Equal(k.PublicKey().Marshal(), c.Key.Marshal()) {
				if cs, err := ssh.NewCertSigner(c, k); err == nil {
					certs = append(certs, cs)
					offered[string(c.Marshal())] = true
				}
				break
			}
		}
	}
	return slices.Concat(certs, out, fileSigners), nil
}

// readCert returns the user certificate in path, nil when there is none.
func readCert(path string) *ssh.Certificate {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	c, _ := k.(*ssh.Certificate)
	return c
}

func hasKey(files []*identity, m []byte) bool {
	for _, id := range files {
		if bytes.Equal(id.pub.Marshal(), m) {
			return true
		}
	}
	return false
}

// keyError is a key that could not be used to sign: the handshake fails as an auth failure.
type keyError struct{ err error }

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }
