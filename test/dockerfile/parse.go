// Package dockerfile checks the image build without a Docker engine: it
// parses the Dockerfile, the Makefile and .dockerignore as text and compares
// them with what `go list` says the manager binary is built from.
package dockerfile

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	// Cmd is the instruction keyword in upper case: FROM, RUN, COPY, ...
	Cmd string
	// Args is the rest of the instruction, trimmed.
	Args string
	// Line is the instruction's first line (from 1).
	Line int
}

// Stage is one FROM and the instructions that follow it.
type Stage struct {
	Index int
	// Name is the stage's AS name; empty when it has none.
	Name string
	// Base is the image the stage starts from, as written.
	Base string
	// Platform is the FROM --platform value, as written.
	Platform     string
	Line         int
	Instructions []Instruction
}

// Ref is how a COPY --from names this stage: its name, else its index.
func (s Stage) Ref() string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprint(s.Index)
}

// Dockerfile is a parsed Dockerfile.
type Dockerfile struct {
	// Global holds the instructions before the first FROM (ARGs).
	Global []Instruction
	Stages []Stage
}

// Stage returns the stage a COPY --from value names, or nil.
func (d *Dockerfile) Stage(ref string) *Stage {
	for i := range d.Stages {
		if strings.EqualFold(d.Stages[i].Name, ref) || fmt.Sprint(d.Stages[i].Index) == ref {
			return &d.Stages[i]
		}
	}
	return nil
}

// ParseDockerfile splits text into instructions and stages. Comment lines
// are dropped (also inside continuations, as Docker does) and lines ending
// in a backslash continue on the next line.
func ParseDockerfile(text string) (*Dockerfile, error) {
	d := &Dockerfile{}
	var (
		buf   strings.Builder
		start int
	)
	flush := func() error {
		line := strings.TrimSpace(buf.String())
		buf.Reset()
		if line == "" {
			return nil
		}
		cmd, args := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			cmd, args = line[:i], line[i+1:]
		}
		in := Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd != "FROM" {
			if len(d.Stages) == 0 {
				d.Global = append(d.Global, in)
			} else {
				s := &d.Stages[len(d.Stages)-1]
				s.Instructions = append(s.Instructions, in)
			}
			return nil
		}
		f := strings.Fields(in.Args)
		var base, name, platform string
		for i := 0; i < len(f); i++ {
			switch {
			case strings.HasPrefix(f[i], "--platform="):
				platform = strings.TrimPrefix(f[i], "--platform=")
			case strings.HasPrefix(f[i], "--"):
			case base == "":
				base = f[i]
			case strings.EqualFold(f[i], "AS") && i+1 < len(f):
				name = f[i+1]
				i++
			}
		}
		if base == "" {
			return fmt.Errorf("line %d: FROM without an image", start)
		}
		d.Stages = append(d.Stages, Stage{Index: len(d.Stages), Name: name, Base: base, Platform: platform, Line: start})
		return nil
	}
	continuing := false
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (continuing && trimmed == "") {
			continue
		}
		if !continuing {
			start = i + 1
		}
		if strings.HasSuffix(line, `\`) {
			buf.WriteString(strings.TrimSuffix(line, `\`))
			continuing = true
			continue
		}
		buf.WriteString(line)
		continuing = false
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if continuing {
		return nil, fmt.Errorf("line %d: the last instruction ends with a backslash", start)
	}
	return d, nil
}

// Copy is a parsed COPY or ADD instruction.
type Copy struct {
	Instruction
	// From is the --from stage or image; empty for the build context.
	From    string
	Sources []string
	Dest    string
}

// ParseCopy parses a COPY or ADD instruction, in shell or JSON form.
func ParseCopy(in Instruction) (Copy, error) {
	c := Copy{Instruction: in}
	args := in.Args
	for strings.HasPrefix(args, "--") {
		flag, rest, _ := strings.Cut(args, " ")
		if v, ok := strings.CutPrefix(flag, "--from="); ok {
			c.From = v
		}
		args = strings.TrimSpace(rest)
	}
	var words []string
	if strings.HasPrefix(args, "[") {
		if err := json.Unmarshal([]byte(args), &words); err != nil {
			return c, fmt.Errorf("line %d: %s in JSON form does not parse: %v", in.Line, in.Cmd, err)
		}
	} else {
		words = strings.Fields(args)
	}
	if len(words) < 2 {
		return c, fmt.Errorf("line %d: %s needs a source and a destination", in.Line, in.Cmd)
	}
	c.Sources, c.Dest = words[:len(words)-1], words[len(words)-1]
	return c, nil
}

// ExecForm returns the words of an instruction in JSON (exec) form, or
// false when it is in shell form.
func ExecForm(in Instruction) ([]string, bool) {
	var words []string
	if !strings.HasPrefix(in.Args, "[") || json.Unmarshal([]byte(in.Args), &words) != nil {
		return nil, false
	}
	return words, true
}

// RunCommand returns the shell command of a RUN instruction, without its
// --mount/--network/--security flags.
func RunCommand(in Instruction) string {
	args := in.Args
	for strings.HasPrefix(args, "--") {
		_, rest, _ := strings.Cut(args, " ")
		args = strings.TrimSpace(rest)
	}
	if words, ok := ExecForm(Instruction{Args: args}); ok {
		return strings.Join(words, " ")
	}
	return args
}

// ShellCommands splits a shell command line into simple commands at &&,
// ||, ;, | and newlines, and each into words, with quotes and backslash
// escapes removed. It is not a shell: enough for build commands.
func ShellCommands(line string) [][]string {
	var (
		cmds           [][]string
		words          []string
		word           strings.Builder
		inWord         bool
		single, double bool
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case single:
			if c == '\'' {
				single = false
			} else {
				word.WriteByte(c)
			}
		case double:
			switch {
			case c == '"':
				double = false
			case c == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0:
				i++
				word.WriteByte(line[i])
			default:
				word.WriteByte(c)
			}
		case c == '\'':
			single, inWord = true, true
		case c == '"':
			double, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			word.WriteByte(line[i])
			inWord = true
		case c == ' ' || c == '\t':
			endWord()
		case c == ';' || c == '\n' || c == '|' || c == '&':
			if (c == '|' || c == '&') && i+1 < len(line) && line[i+1] == c {
				i++
			}
			endCmd()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds
}

// GoBuild is a normalized `go build` command.
type GoBuild struct {
	// Env holds the variables set for the command (inline and by ENV).
	Env map[string]string
	// Flags maps each build flag (single dash) to its value; "" for
	// boolean flags given without a value. -o is in Output instead.
	Flags map[string]string
	// Output is the -o value, as written.
	Output   string
	Packages []string
}

// goBoolFlags are the go build flags that take no separate value.
var goBoolFlags = map[string]bool{
	"-a": true, "-n": true, "-race": true, "-msan": true, "-asan": true, "-v": true,
	"-work": true, "-x": true, "-trimpath": true, "-linkshared": true, "-buildvcs": true,
	"-cover": true, "-modcacherw": true, "-json": true, "-i": true,
}

// envAssignment matches a shell variable assignment word.
var envAssignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// FindGoBuild returns the first `go build` among the simple commands of a
// shell line, with the variables assigned in front of it.
func FindGoBuild(line string) (*GoBuild, bool) {
	for _, words := range ShellCommands(line) {
		env := map[string]string{}
		i := 0
		for i < len(words) && envAssignment.MatchString(words[i]) {
			m := envAssignment.FindStringSubmatch(words[i])
			env[m[1]] = CanonicalVars(m[2])
			i++
		}
		if i < len(words) && words[i] == "env" { // env VAR=x go build
			for i++; i < len(words) && envAssignment.MatchString(words[i]); i++ {
				m := envAssignment.FindStringSubmatch(words[i])
				env[m[1]] = CanonicalVars(m[2])
			}
		}
		if i+1 >= len(words) || path.Base(words[i]) != "go" || words[i+1] != "build" {
			continue
		}
		b := &GoBuild{Env: env, Flags: map[string]string{}}
		rest := words[i+2:]
		for j := 0; j < len(rest); j++ {
			w := rest[j]
			if !strings.HasPrefix(w, "-") {
				b.Packages = append(b.Packages, rest[j:]...)
				break
			}
			name, value, hasValue := strings.Cut("-"+strings.TrimLeft(w, "-"), "=")
			if !hasValue && !goBoolFlags[name] && j+1 < len(rest) {
				j++
				value = rest[j]
			}
			value = normalizeFlagValue(value)
			if name == "-o" {
				b.Output = value
				continue
			}
			b.Flags[name] = value
		}
		return b, true
	}
	return nil, false
}

// normalizeFlagValue writes a flag value the way the go command reads a
// list flag (-ldflags, -gcflags): words split at spaces, quotes removed;
// variable references in canonical form.
func normalizeFlagValue(v string) string {
	var words []string
	for _, cmd := range ShellCommands(strings.NewReplacer(";", `\;`, "|", `\|`, "&", `\&`).Replace(v)) {
		words = append(words, cmd...)
	}
	return CanonicalVars(strings.Join(words, " "))
}

var (
	shellBraceVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+=?][^}]*)?\}`)
	shellBareVar  = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)`)
)

// CanonicalVars writes every shell variable reference as ${NAME}, dropping
// default-value forms, so that $V, ${V} and ${V:-x} compare equal.
func CanonicalVars(s string) string {
	s = shellBraceVar.ReplaceAllString(s, "$${$1}")
	return shellBareVar.ReplaceAllString(s, "$${$1}")
}

// Makefile is the little of a Makefile these checks need: variables and
// the recipes of rules.
type Makefile struct {
	Vars    map[string]string
	Recipes map[string][]string
}

var (
	makeAssign = regexp.MustCompile(`^(?:export\s+|override\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*([?:+!]?=|::=)\s*(.*)$`)
	makeRule   = regexp.MustCompile(`^([A-Za-z0-9_./%$() -]+?)\s*:([^=].*|)$`)
)

// ParseMakefile reads variable assignments and rule recipes from the text
// of one or more makefiles (later texts are included files).
func ParseMakefile(texts ...string) *Makefile {
	m := &Makefile{Vars: map[string]string{}, Recipes: map[string][]string{}}
	for _, text := range texts {
		var targets []string
		lines := strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n")
		for _, line := range lines {
			if strings.HasPrefix(line, "\t") {
				for _, t := range targets {
					m.Recipes[t] = append(m.Recipes[t], strings.TrimSpace(line[1:]))
				}
				continue
			}
			trimmed := strings.TrimSpace(line)
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			if a := makeAssign.FindStringSubmatch(trimmed); a != nil {
				targets = nil
				name, op, value := a[1], a[2], strings.TrimSpace(stripMakeComment(a[3]))
				switch _, set := m.Vars[name]; {
				case op == "?=" && set:
				case op == "+=" && set:
					m.Vars[name] += " " + value
				default:
					m.Vars[name] = value
				}
				continue
			}
			if r := makeRule.FindStringSubmatch(trimmed); r != nil {
				targets = strings.Fields(r[1])
				continue
			}
			targets = nil
		}
	}
	return m
}

func stripMakeComment(s string) string {
	if i := strings.Index(s, "#"); i >= 0 && !strings.Contains(s[:i], `\`) {
		return s[:i]
	}
	return s
}

var makeRef = regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_.-]*)[)}]`)

// Expand replaces make variable references in s with their values, and
// turns $$ into the shell's $. A variable that is not defined, or whose
// value calls a make function ($(shell ...)), becomes ${NAME}: the same
// canonical form CanonicalVars gives a shell variable.
func (m *Makefile) Expand(s string) string {
	s = strings.ReplaceAll(s, "$$", "\x01") // make's escaped $, the shell's $
	for depth := 0; depth < 10 && makeRef.MatchString(s); depth++ {
		s = makeRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := makeRef.FindStringSubmatch(ref)[1]
			v, ok := m.Vars[name]
			if !ok || strings.Contains(v, "$(shell") || strings.Contains(v, "${shell") {
				return "\x00{" + name + "}"
			}
			return strings.ReplaceAll(v, "$$", "\x01")
		})
	}
	return strings.NewReplacer("\x00", "$", "\x01", "$").Replace(s)
}

// GoBuild returns the `go build` command of target's recipe, expanded.
func (m *Makefile) GoBuild(target string) (*GoBuild, error) {
	recipe, ok := m.Recipes[target]
	if !ok {
		return nil, fmt.Errorf("the Makefile has no %q target", target)
	}
	for _, line := range recipe {
		line = strings.TrimLeft(line, "@-+")
		if b, ok := FindGoBuild(m.Expand(line)); ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("the Makefile's %q recipe runs no `go build`", target)
}

// IgnoreRule is one .dockerignore line.
type IgnoreRule struct {
	Pattern   string
	Exclusion bool // a "!" line: re-includes what it matches
	re        *regexp.Regexp
}

// Dockerignore is a parsed .dockerignore.
type Dockerignore []IgnoreRule

// ParseDockerignore parses .dockerignore text with Docker's rules: one
// pattern a line, # comments, ! exceptions, paths relative to the context
// root whatever their leading slash, Go filepath.Match syntax plus **.
func ParseDockerignore(text string) (Dockerignore, error) {
	var rules Dockerignore
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := IgnoreRule{}
		if strings.HasPrefix(line, "!") {
			r.Exclusion, line = true, strings.TrimSpace(line[1:])
		}
		line = strings.TrimPrefix(path.Clean("/"+line), "/")
		if line == "" {
			line = "."
		}
		r.Pattern = line
		re, err := regexp.Compile(globRegexp(line))
		if err != nil {
			return nil, fmt.Errorf(".dockerignore pattern %q: %v", line, err)
		}
		r.re = re
		rules = append(rules, r)
	}
	return rules, nil
}

// globRegexp translates a .dockerignore pattern into an anchored regexp.
func globRegexp(p string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' { // "**/": any directories, or none
				i++
				b.WriteString("(.*/)?")
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := p[i+1 : i+j]
			if strings.HasPrefix(class, "^") || strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String()
}

// Excluded reports whether the context path p (slash-separated, relative to
// the context root) is left out of the build context, and by which rule: a
// rule applies when it matches p or one of p's parent directories; the last
// rule that applies decides.
func (d Dockerignore) Excluded(p string) (bool, string) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	excluded, by := false, ""
	parts := strings.Split(p, "/")
	for _, r := range d {
		match := r.re.MatchString(p)
		for i := 1; !match && i < len(parts); i++ {
			match = r.re.MatchString(strings.Join(parts[:i], "/"))
		}
		if match {
			excluded, by = !r.Exclusion, r.Pattern
			if r.Exclusion {
				by = "!" + r.Pattern
			}
		}
	}
	return excluded, by
}
