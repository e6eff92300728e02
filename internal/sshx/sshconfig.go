package sshx

import (
	"fmt"
	"strings"
)

// This file reads ssh_config files as OpenSSH 9's readconf.c does: each line is split into a
// keyword and arguments once, when the file is read (parseConfig); which lines apply to a host is
// decided when the host is resolved (resolve.go), because Match, Include and IgnoreUnknown depend
// on the values set so far.

// cfgLine is one line of an ssh_config file, split as readconf.c splits it.
type cfgLine struct {
	num     int
	keyword string   // lowercased; "" for a blank or comment line
	rest    string   // the text after the keyword and its separator, as written
	args    []string // rest split into arguments (quotes and escapes removed, comment dropped)
	err     string   // why ssh rejects this line, whatever the host
}

// cfgFile is a parsed ssh_config file.
type cfgFile struct {
	path  string
	lines []cfgLine
}

// maxConfigLines bounds the lines read from one ssh_config file.
const maxConfigLines = 1 << 20

// parseConfig splits data, the contents of the ssh_config file path, into lines.
func parseConfig(path string, data []byte) *cfgFile {
	f := &cfgFile{path: path}
	text := string(data)
	for num := 1; text != "" && num <= maxConfigLines; num++ {
		line, next, found := strings.Cut(text, "\n")
		text = next
		if found {
			line += "\n"
		}
		if i := strings.IndexByte(line, 0); i >= 0 {
			line = line[:i] // C reads up to the NUL
		}
		l := parseLine(line)
		if l.keyword != "" || l.err != "" {
			l.num = num
			f.lines = append(f.lines, l)
		}
	}
	return f
}

const whitespace = " \t\r\n"

// parseLine is the static half of readconf.c's process_config_line_depth: the keyword and its
// arguments.
func parseLine(line string) cfgLine {
	// Strip trailing whitespace (and form feeds), never the first character.
	n := len(line)
	for n > 1 && strings.IndexByte(whitespace+"\f", line[n-1]) >= 0 {
		n--
	}
	str := line[:n]
	keyword, rest, ok, kok := strdelim(str, true)
	if !kok {
		return cfgLine{}
	}
	if keyword == "" {
		keyword, rest, ok, kok = strdelim(rest, ok)
	}
	if !kok || keyword == "" || keyword[0] == '\n' || keyword[0] == '#' {
		return cfgLine{}
	}
	keyword = strings.ToLower(keyword)
	if ok {
		rest = strings.TrimLeft(rest, whitespace)
	}
	if !ok || rest == "" {
		return cfgLine{keyword: keyword, err: fmt.Sprintf("no argument after keyword %q", keyword)}
	}
	l := cfgLine{keyword: keyword, rest: rest}
	args, err := argvSplit(rest)
	if err != nil {
		l.err = "invalid quotes"
		return l
	}
	l.args = args
	return l
}

// strdelim is misc.c's strdelim on a string that may be NULL (ok false): it returns the next
// token of s, split on whitespace, a quoted string or one '=', the rest of s after it, whether
// the rest is not NULL, and whether a token was found at all.
func strdelim(s string, ok bool) (tok, rest string, restOK, tokOK bool) {
	if !ok {
		return "", "", false, false
	}
	i := strings.IndexAny(s, whitespace+"\"=")
	if i < 0 {
		return s, "", false, true
	}
	if s[i] == '"' {
		s = s[:i] + s[i+1:]
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return "", "", false, false
		}
		j += i
		return s[:j], strings.TrimLeft(s[j+1:], whitespace), true, true
	}
	eq := s[i] == '='
	tok, rest = s[:i], strings.TrimLeft(s[i+1:], whitespace)
	if !eq && strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], whitespace)
	}
	return tok, rest, true, true
}

// errQuotes is an argument list with an unclosed quote.
var errQuotes = fmt.Errorf("invalid quotes")

// argvSplit is misc.c's argv_split with terminate_on_comment: arguments separated by spaces and
// tabs, quoted with ' or ", with \\, \", \' and (outside quotes) "\ " escapes; a '#' that starts
// an argument ends the line.
func argvSplit(s string) ([]string, error) {
	var out []string
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' {
				if i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')) {
					i++
					b.WriteByte(s[i])
				} else {
					b.WriteByte(c)
				}
			} else if quote == 0 && (c == ' ' || c == '\t') {
				break
			} else if quote == 0 && (c == '"' || c == '\'') {
				quote = c
			} else if quote != 0 && c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		}
		if i >= len(s) && quote != 0 {
			return nil, errQuotes
		}
		out = append(out, b.String())
	}
	return out, nil
}

// keywords maps every keyword OpenSSH 9.2's ssh accepts (Debian's build, with GSSAPI and
// PKCS#11) to the option it sets: aliases share one name.
var keywords = map[string]string{
	"protocol": "ignore", "cipher": "deprecated", "fallbacktorsh": "deprecated",
	"globalknownhostsfile2": "deprecated", "rhostsauthentication": "deprecated",
	"userknownhostsfile2": "deprecated", "useroaming": "deprecated", "usersh": "deprecated",
	"useprivilegedport": "deprecated", "afstokenpassing": "unsupported",
	"kerberosauthentication": "unsupported", "kerberostgtpassing": "unsupported",
	"rsaauthentication": "unsupported", "rhostsrsaauthentication": "unsupported",
	"compressionlevel":     "unsupported",
	"gssapiauthentication": "gssapiauthentication", "gssapidelegatecredentials": "gssapidelegatecredentials",
	"gssapikeyexchange": "gssapikeyexchange", "gssapiclientidentity": "gssapiclientidentity",
	"gssapiserveridentity": "gssapiserveridentity", "gssapirenewalforcesrekey": "gssapirenewalforcesrekey",
	"gssapitrustdns": "gssapitrustdns", "gssapikexalgorithms": "gssapikexalgorithms",
	"pkcs11provider": "pkcs11provider", "smartcarddevice": "pkcs11provider",
	"forwardagent": "forwardagent", "forwardx11": "forwardx11", "forwardx11trusted": "forwardx11trusted",
	"forwardx11timeout": "forwardx11timeout", "exitonforwardfailure": "exitonforwardfailure",
	"xauthlocation": "xauthlocation", "gatewayports": "gatewayports",
	"passwordauthentication":       "passwordauthentication",
	"kbdinteractiveauthentication": "kbdinteractiveauthentication", "kbdinteractivedevices": "kbdinteractivedevices",
	"challengeresponseauthentication": "kbdinteractiveauthentication",
	"skeyauthentication":              "kbdinteractiveauthentication", "tisauthentication": "kbdinteractiveauthentication",
	"pubkeyauthentication": "pubkeyauthentication", "dsaauthentication": "pubkeyauthentication",
	"hostbasedauthentication": "hostbasedauthentication", "identityfile": "identityfile",
	"identityfile2": "identityfile", "identitiesonly": "identitiesonly", "certificatefile": "certificatefile",
	"addkeystoagent": "addkeystoagent", "identityagent": "identityagent", "hostname": "hostname",
	"hostkeyalias": "hostkeyalias", "proxycommand": "proxycommand", "port": "port", "ciphers": "ciphers",
	"macs": "macs", "remoteforward": "remoteforward", "localforward": "localforward",
	"permitremoteopen": "permitremoteopen", "user": "user", "host": "host", "match": "match",
	"escapechar": "escapechar", "globalknownhostsfile": "globalknownhostsfile",
	"userknownhostsfile": "userknownhostsfile", "connectionattempts": "connectionattempts",
	"batchmode": "batchmode", "checkhostip": "checkhostip", "stricthostkeychecking": "stricthostkeychecking",
	"compression": "compression", "tcpkeepalive": "tcpkeepalive", "keepalive": "tcpkeepalive",
	"numberofpasswordprompts": "numberofpasswordprompts", "syslogfacility": "syslogfacility",
	"loglevel": "loglevel", "logverbose": "logverbose", "dynamicforward": "dynamicforward",
	"preferredauthentications": "preferredauthentications", "hostkeyalgorithms": "hostkeyalgorithms",
	"casignaturealgorithms": "casignaturealgorithms", "bindaddress": "bindaddress",
	"bindinterface": "bindinterface", "clearallforwardings": "clearallforwardings",
	"enablesshkeysign": "enablesshkeysign", "verifyhostkeydns": "verifyhostkeydns",
	"nohostauthenticationforlocalhost": "nohostauthenticationforlocalhost", "rekeylimit": "rekeylimit",
	"connecttimeout": "connecttimeout", "addressfamily": "addressfamily",
	"serveraliveinterval": "serveraliveinterval", "serveralivecountmax": "serveralivecountmax",
	"sendenv": "sendenv", "setenv": "setenv", "controlpath": "controlpath", "controlmaster": "controlmaster",
	"controlpersist": "controlpersist", "hashknownhosts": "hashknownhosts", "include": "include",
	"tunnel": "tunnel", "tunneldevice": "tunneldevice", "localcommand": "localcommand",
	"permitlocalcommand": "permitlocalcommand", "remotecommand": "remotecommand",
	"visualhostkey": "visualhostkey", "kexalgorithms": "kexalgorithms", "ipqos": "ipqos",
	"requesttty": "requesttty", "sessiontype": "sessiontype", "stdinnull": "stdinnull",
	"forkafterauthentication": "forkafterauthentication", "proxyusefdpass": "proxyusefdpass",
	"canonicaldomains": "canonicaldomains", "canonicalizefallbacklocal": "canonicalizefallbacklocal",
	"canonicalizehostname": "canonicalizehostname", "canonicalizemaxdots": "canonicalizemaxdots",
	"canonicalizepermittedcnames": "canonicalizepermittedcnames",
	"streamlocalbindmask":         "streamlocalbindmask", "streamlocalbindunlink": "streamlocalbindunlink",
	"revokedhostkeys": "revokedhostkeys", "fingerprinthash": "fingerprinthash",
	"updatehostkeys": "updatehostkeys", "hostbasedacceptedalgorithms": "hostbasedacceptedalgorithms",
	"hostbasedkeytypes": "hostbasedacceptedalgorithms", "pubkeyacceptedalgorithms": "pubkeyacceptedalgorithms",
	"pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms", "ignoreunknown": "ignoreunknown",
	"proxyjump": "proxyjump", "securitykeyprovider": "securitykeyprovider",
	"knownhostscommand": "knownhostscommand", "requiredrsasize": "requiredrsasize",
	"enableescapecommandline": "enableescapecommandline",
}

// matchPattern is match.c's match_pattern: s against a pattern of '*' and '?' wildcards.
func matchPattern(s, pattern string) bool {
	for {
		if pattern == "" {
			return s == ""
		}
		if pattern[0] == '*' {
			pattern = strings.TrimLeft(pattern, "*")
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchPattern(s[i:], pattern) {
					return true
				}
			}
			return false
		}
		if s == "" {
			return false
		}
		if pattern[0] != '?' && pattern[0] != s[0] {
			return false
		}
		s, pattern = s[1:], pattern[1:]
	}
}

// matchPatternList is match.c's match_pattern_list: 1 when a positive subpattern of the comma
// list matches, -1 when a negated one does, 0 otherwise. dolower lowercases the patterns.
func matchPatternList(s, list string, dolower bool) int {
	got := 0
	for sub := range strings.SplitSeq(list, ",") {
		neg := strings.HasPrefix(sub, "!")
		if neg {
			sub = sub[1:]
		}
		if len(sub) >= 1023 {
			return 0
		}
		if dolower {
			sub = lowerASCII(sub)
		}
		if matchPattern(s, sub) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

// lowerASCII lowercases the ASCII letters of s, as C's tolower in the C locale.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
