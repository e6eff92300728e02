package sshx

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// algoList is one of ssh_config's algorithm options, with what OpenSSH 9.2 (the build shoal is
// tested against) offers by default and supports at all, as `ssh -G` and `ssh -Q` print them.
type algoList struct {
	key        string // ssh_config keyword, lowercase
	def, all   string
	supported  func(ssh.Algorithms) []string // what x/crypto/ssh implements
	configured func(h *HostConfig) *[]string
}

var algoLists = []algoList{
	{key: "ciphers",
		def: "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
		all: "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com," +
			"aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
		supported:  func(a ssh.Algorithms) []string { return a.Ciphers },
		configured: func(h *HostConfig) *[]string { return &h.Ciphers }},
	{key: "kexalgorithms",
		def: "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org," +
			"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256," +
			"diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
		all: "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512," +
			"diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256," +
			"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,curve25519-sha256@libssh.org," +
			"sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com",
		supported:  func(a ssh.Algorithms) []string { return a.KeyExchanges },
		configured: func(h *HostConfig) *[]string { return &h.KexAlgorithms }},
	{key: "macs",
		def: "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com," +
			"hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
		all: "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,hmac-md5-96,umac-64@openssh.com,umac-128@openssh.com," +
			"hmac-sha1-etm@openssh.com,hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com," +
			"hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,umac-64-etm@openssh.com,umac-128-etm@openssh.com",
		supported:  func(a ssh.Algorithms) []string { return a.MACs },
		configured: func(h *HostConfig) *[]string { return &h.MACs }},
}

// validAlgos reports whether every name of v (after a + or ^, when there) is one of all, as
// readconf.c checks a list that does not start with -.
func validAlgos(v, all string) bool {
	if strings.HasPrefix(v, "-") {
		return true
	}
	if strings.HasPrefix(v, "+") || strings.HasPrefix(v, "^") {
		v = v[1:]
	}
	names := strings.Split(all, ",")
	for n := range strings.SplitSeq(v, ",") {
		if !slices.Contains(names, n) {
			return false
		}
	}
	return v != ""
}

// catNames is kex.c's kex_names_cat: a, then the names of b not in a.
func catNames(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// assembleAlgos is kex.c's kex_assemble_names: v as ssh_config writes it ("+x", "-x*", "^x"
// or a list, each name a pattern) against the default and every supported name.
func assembleAlgos(v, def, all string) ([]string, error) {
	defs, alls := strings.Split(def, ","), strings.Split(all, ",")
	if v == "" {
		return defs, nil
	}
	var list []string
	switch v[0] {
	case '+':
		list = catNames(defs, strings.Split(v[1:], ","))
	case '-':
		var out []string
		for _, n := range defs {
			if matchPatternList(n, v[1:], false) != 1 {
				out = append(out, n)
			}
		}
		return out, nil
	case '^':
		list = catNames(strings.Split(v[1:], ","), defs)
	default:
		list = strings.Split(v, ",")
	}
	var out []string
	for _, p := range list {
		if strings.HasPrefix(p, "!") {
			return nil, fmt.Errorf("negated pattern %q", p)
		}
		var matching []string
		for _, n := range alls {
			if matchPatternList(n, p, false) == 1 {
				matching = append(matching, n)
			}
		}
		out = catNames(out, matching)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no algorithm matches %q", v)
	}
	return out, nil
}

// clientAlgos returns the names of list the built-in client implements, in order.
func clientAlgos(list []string, supported func(ssh.Algorithms) []string) []string {
	impl := slices.Concat(supported(ssh.SupportedAlgorithms()), supported(ssh.InsecureAlgorithms()))
	var out []string
	for _, n := range list {
		if slices.Contains(impl, n) {
			out = append(out, n)
		}
	}
	return out
}
