// Package dockerfile checks the image build without a Docker engine: it
// reads the Dockerfile with buildkit's parser, the shell of its RUN lines
// and of the Makefile's build (as make -n prints it) with mvdan.cc/sh, .dockerignore with
// Docker's own pattern matcher, and compares them with what `go list` says
// the manager binary is built from.
package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/shell"
	"mvdan.cc/sh/v3/syntax"
)

// Dockerfile is a Dockerfile as buildkit reads it.
type Dockerfile struct {
	Stages []instructions.Stage
	// MetaArgs are the ARGs before the first FROM.
	MetaArgs []instructions.ArgCommand
}

// ParseDockerfile parses text with buildkit's parser into stages of typed
// instructions. Errors name the line.
func ParseDockerfile(text string) (*Dockerfile, error) {
	res, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		return nil, withLine(err)
	}
	// A linter without a Warn function: buildkit's lint rules stay quiet.
	stages, metaArgs, err := instructions.Parse(res.AST, &linter.Linter{})
	if err != nil {
		return nil, withLine(err)
	}
	return &Dockerfile{Stages: stages, MetaArgs: metaArgs}, nil
}

// withLine puts the line buildkit attaches to an error in its message.
func withLine(err error) error {
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		return fmt.Errorf("line %d: %w", loc.Locations[0][0].Start.Line, err)
	}
	return err
}

// Stage returns the stage a COPY --from value names (its name, whatever
// the case, or its index), or nil.
func (d *Dockerfile) Stage(ref string) *instructions.Stage {
	for i := range d.Stages {
		if strings.EqualFold(d.Stages[i].Name, ref) || strconv.Itoa(i) == ref {
			return &d.Stages[i]
		}
	}
	return nil
}

// Ref is how a COPY --from names stage i: its name, else its index.
func (d *Dockerfile) Ref(i int) string {
	if name := d.Stages[i].Name; name != "" {
		return name
	}
	return strconv.Itoa(i)
}

// line is the first line of a located instruction (from 1).
func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// Copy is a COPY or ADD instruction, the fields the checks use.
type Copy struct {
	// Cmd is COPY or ADD.
	Cmd  string
	Line int
	// From is the --from stage or image; empty for the build context.
	From    string
	Sources []string
	Dest    string
}

// copies returns the COPY and ADD instructions of a stage.
func copies(s *instructions.Stage) []Copy {
	var cs []Copy
	for _, cmd := range s.Commands {
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			cs = append(cs, Copy{Cmd: "COPY", Line: line(c.Location()), From: c.From, Sources: c.SourcePaths, Dest: c.DestPath})
		case *instructions.AddCommand:
			cs = append(cs, Copy{Cmd: "ADD", Line: line(c.Location()), Sources: c.SourcePaths, Dest: c.DestPath})
		}
	}
	return cs
}

// RunScripts returns the shell scripts a RUN instruction runs: its command
// line (an exec-form RUN as one command, or the script of `sh -c`) and the
// bodies of its heredocs.
func RunScripts(r *instructions.RunCommand) []string {
	if !r.PrependShell { // exec form: the words are the command
		words := r.CmdLine
		if len(words) == 3 && (path.Base(words[0]) == "sh" || path.Base(words[0]) == "bash") && words[1] == "-c" {
			return []string{words[2]}
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			q, err := syntax.Quote(w, syntax.LangBash)
			if err != nil {
				q = w
			}
			quoted[i] = q
		}
		return []string{strings.Join(quoted, " ")}
	}
	// The command line with its heredocs, as the shell reads it, then
	// each heredoc's body: `RUN <<EOF` runs the body as a script.
	script := strings.Join(r.CmdLine, " ")
	bodies := make([]string, 0, len(r.Files))
	for _, f := range r.Files {
		script += "\n" + f.Data
		if !strings.HasSuffix(f.Data, "\n") {
			script += "\n"
		}
		script += f.Name
		bodies = append(bodies, f.Data)
	}
	return append([]string{script}, bodies...)
}

// canonicalVar gives every shell variable the value ${NAME}: with it, $V,
// ${V} and ${V:-x} all expand to ${V}, and so compare equal. IFS stays
// unset, so words split at blanks.
func canonicalVar(name string) string {
	if name == "IFS" {
		return ""
	}
	return "${" + name + "}"
}

// expandConfig expands words without running anything: a command
// substitution stays as written.
var expandConfig = &expand.Config{
	Env: expand.FuncEnviron(canonicalVar),
	CmdSubst: func(w io.Writer, cs *syntax.CmdSubst) error {
		return syntax.NewPrinter().Print(w, cs)
	},
}

// literal is a shell word with quotes and escapes removed and variables in
// canonical form.
func literal(w *syntax.Word) (string, error) {
	return expand.Literal(expandConfig, w)
}

// ShellWords expands s as the shell expands a command's arguments (quotes
// removed, variables in canonical form) and joins the fields with spaces.
func ShellWords(s string) (string, error) {
	fields, err := shell.Fields(s, canonicalVar)
	if err != nil {
		return "", err
	}
	return strings.Join(fields, " "), nil
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

// envAssignment matches a variable assignment word (of `env VAR=x`).
var envAssignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// FindGoBuild parses a shell script with mvdan.cc/sh and returns its first
// `go build` (in && and || chains, pipelines, subshells, ...), with the
// variables assigned in front of it (inline or with `env`).
func FindGoBuild(script string) (*GoBuild, bool, error) {
	f, err := syntax.NewParser().Parse(strings.NewReader(script), "")
	if err != nil {
		return nil, false, err
	}
	var (
		found   *GoBuild
		walkErr error
	)
	syntax.Walk(f, func(n syntax.Node) bool {
		if found != nil || walkErr != nil {
			return false
		}
		call, ok := n.(*syntax.CallExpr)
		if !ok {
			return true
		}
		found, walkErr = goBuild(call)
		return found == nil && walkErr == nil
	})
	return found, found != nil, walkErr
}

// goBuild returns the simple command call as a GoBuild, or nil if it does
// not run `go build`.
func goBuild(call *syntax.CallExpr) (*GoBuild, error) {
	env := map[string]string{}
	for _, a := range call.Assigns {
		v := ""
		if a.Value != nil {
			var err error
			if v, err = literal(a.Value); err != nil {
				return nil, err
			}
		}
		env[a.Name.Value] = v
	}
	words := make([]string, 0, len(call.Args))
	for _, w := range call.Args {
		s, err := literal(w)
		if err != nil {
			return nil, err
		}
		words = append(words, s)
	}
	i := 0
	if len(words) > 0 && words[0] == "env" { // env VAR=x go build
		for i = 1; i < len(words); i++ {
			m := envAssignment.FindStringSubmatch(words[i])
			if m == nil {
				break
			}
			env[m[1]] = m[2]
		}
	}
	if i+1 >= len(words) || path.Base(words[i]) != "go" || words[i+1] != "build" {
		return nil, nil
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
		// A list flag (-ldflags, -gcflags) is split at spaces, quotes
		// removed, as the go command reads it.
		if norm, err := ShellWords(value); err == nil {
			value = norm
		}
		if name == "-o" {
			b.Output = value
			continue
		}
		b.Flags[name] = value
	}
	return b, nil
}

// MakeGoBuild returns the first `go build` that make prints for target
// of the makefile text, run in dir (includes are read from there) as a
// dry run (make -n): make itself expands the variables.
func MakeGoBuild(text, dir, target string) (*GoBuild, error) {
	f, err := os.CreateTemp("", "Makefile.*")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.WriteString(text); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.Command("make", "--dry-run", "--silent", "--no-print-directory", "-C", dir, "-f", f.Name(), target)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if strings.Contains(stderr.String(), "No rule to make target") {
		return nil, fmt.Errorf("the Makefile has no %q target", target)
	}
	if err != nil {
		return nil, fmt.Errorf("make -n %s: %v: %s", target, err, stderr.String())
	}
	for _, line := range strings.Split(string(out), "\n") {
		b, ok, err := FindGoBuild(line)
		if err != nil {
			return nil, fmt.Errorf("make %s runs %q, which does not parse as shell: %w", target, line, err)
		}
		if ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("make %s runs no `go build`", target)
}

// Dockerignore is a .dockerignore read and matched as Docker does.
type Dockerignore struct {
	all *patternmatcher.PatternMatcher
	// one holds a matcher per pattern, to tell which pattern decided.
	one []*patternmatcher.PatternMatcher
	// patterns as written in the file, "!" included.
	patterns []string
}

// ParseDockerignore reads .dockerignore text with Docker's rules (comments,
// ! exceptions, leading slashes dropped, paths cleaned).
func ParseDockerignore(text string) (*Dockerignore, error) {
	patterns, err := ignorefile.ReadAll(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	all, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	d := &Dockerignore{all: all, patterns: patterns}
	for _, p := range patterns {
		one, err := patternmatcher.New([]string{strings.TrimPrefix(p, "!")})
		if err == nil { // a pattern compiles when first matched
			_, err = one.MatchesOrParentMatches(".")
		}
		if err != nil {
			return nil, fmt.Errorf(".dockerignore pattern %q: %w", p, err)
		}
		d.one = append(d.one, one)
	}
	return d, nil
}

// Excluded reports whether the context path p (slash-separated, relative to
// the context root) is left out of the build context, and by which pattern:
// the last one that matches p or one of its parent directories.
func (d *Dockerignore) Excluded(p string) (bool, string) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	excluded, _ := d.all.MatchesOrParentMatches(p) // every pattern compiled in ParseDockerignore
	by := ""
	for i, one := range d.one {
		if m, err := one.MatchesOrParentMatches(p); err == nil && m {
			by = d.patterns[i]
		}
	}
	return excluded, by
}
