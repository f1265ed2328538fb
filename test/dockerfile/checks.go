package dockerfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// BuilderSources are the only build-context paths the builder stage may
// copy: the manager's code and the module files. Anything else (hack/,
// test/, config/, a stray kubeconfig) has no business in the image build.
var BuilderSources = []string{"go.mod", "go.sum", "main.go", "api", "controllers", "internal"}

// Build is what the checks learn from the Dockerfile: the stage that runs
// `go build`, the final stage, and the command itself.
type Build struct {
	Builder, Final *instructions.Stage
	// BuilderRef is how COPY --from names the builder: its name, else its index.
	BuilderRef string
	// GoBuild is the builder's `go build`, its Env including the stage's ENVs.
	GoBuild *GoBuild
	// GoBuildLine is the line of the RUN holding it.
	GoBuildLine int
	// Workdir is the builder's working directory at the `go build`.
	Workdir string
	// Binary is the absolute path of the built binary in the builder.
	Binary string
}

// Analyse finds the builder stage and its `go build`.
func Analyse(d *Dockerfile) (*Build, error) {
	if len(d.Stages) == 0 {
		return nil, errors.New("the Dockerfile has no FROM")
	}
	b := &Build{Final: &d.Stages[len(d.Stages)-1]}
	for i := range d.Stages {
		s := &d.Stages[i]
		wd, env := "/", map[string]string{}
		for _, cmd := range s.Commands {
			switch c := cmd.(type) {
			case *instructions.WorkdirCommand:
				wd = resolve(wd, c.Path)
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					v, err := ShellWords(kv.Value)
					if err != nil {
						return nil, fmt.Errorf("line %d: ENV %s: %w", line(c.Location()), kv.Key, err)
					}
					env[kv.Key] = v
				}
			case *instructions.RunCommand:
				if b.GoBuild != nil {
					continue
				}
				gb, err := runGoBuild(c)
				if err != nil || gb == nil {
					if err != nil {
						return nil, err
					}
					continue
				}
				for k, v := range env {
					if _, set := gb.Env[k]; !set {
						gb.Env[k] = v
					}
				}
				b.Builder, b.BuilderRef, b.GoBuild, b.GoBuildLine, b.Workdir = s, d.Ref(i), gb, line(c.Location()), wd
				out := gb.Output
				if out == "" { // go build names the binary after the main package's directory
					out = path.Base(wd)
				}
				b.Binary = resolve(wd, out)
			}
		}
	}
	if b.Builder == nil {
		return nil, errors.New("no RUN instruction of the Dockerfile runs `go build`")
	}
	return b, nil
}

// runGoBuild returns the `go build` a RUN instruction runs, or nil.
func runGoBuild(r *instructions.RunCommand) (*GoBuild, error) {
	for _, script := range RunScripts(r) {
		gb, ok, err := FindGoBuild(script)
		if err != nil {
			return nil, fmt.Errorf("line %d: RUN does not parse as a shell command: %w", line(r.Location()), err)
		}
		if ok {
			return gb, nil
		}
	}
	return nil, nil
}

// resolve returns p made absolute against the directory wd.
func resolve(wd, p string) string {
	p = strings.Trim(p, `"`)
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(wd, p)
}

// contextCopies returns the COPY and ADD instructions of stage s that read
// the build context (no --from).
func contextCopies(s *instructions.Stage) []Copy {
	var cs []Copy
	for _, c := range copies(s) {
		if c.From == "" {
			cs = append(cs, c)
		}
	}
	return cs
}

// cleanSource normalizes a COPY source to a context-relative path: "./api/" → "api".
func cleanSource(src string) string {
	if s := strings.TrimPrefix(path.Clean("/"+src), "/"); s != "" {
		return s
	}
	return "."
}

// CheckStages checks the Dockerfile is multi-stage: the Go toolchain and
// sources stay in a builder stage the final image does not inherit.
func CheckStages(d *Dockerfile) []string {
	if n := len(d.Stages); n < 2 {
		return []string{fmt.Sprintf("the Dockerfile has %d stage(s); it must be multi-stage: a builder stage with the Go toolchain, and a final stage with the binary only", n)}
	}
	return nil
}

// CheckFinal checks the final stage: a distroless or scratch base, a
// numeric non-root USER, one COPY of the binary from the builder, and an
// exec-form ENTRYPOINT running it.
func CheckFinal(d *Dockerfile, b *Build) []string {
	var problems []string
	f := b.Final
	if f == b.Builder {
		return []string{fmt.Sprintf("the final stage (line %d) is the stage that runs `go build`: the image would ship the Go toolchain and the sources", line(f.Location))}
	}
	if base := f.BaseName; base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/") {
		problems = append(problems, fmt.Sprintf("the final stage (line %d) is FROM %s; it must be gcr.io/distroless/... or scratch: no shell, no package manager", line(f.Location), base))
	}
	problems = append(problems, checkUser(f)...)

	var binaryCopies []Copy
	for _, c := range copies(f) {
		switch {
		case c.Cmd == "ADD":
			problems = append(problems, fmt.Sprintf("line %d: ADD in the final stage; the final image must get only the binary, with a COPY --from=%s", c.Line, b.BuilderRef))
		case c.From == "":
			problems = append(problems, fmt.Sprintf("line %d: the final stage copies %s from the build context; it must hold only the binary built in stage %q", c.Line, strings.Join(c.Sources, " "), b.BuilderRef))
		case d.Stage(c.From) != b.Builder:
			problems = append(problems, fmt.Sprintf("line %d: the final stage copies from %q; it must copy only the binary from the builder stage %q", c.Line, c.From, b.BuilderRef))
		case len(c.Sources) != 1 || path.Clean(c.Sources[0]) != b.Binary:
			problems = append(problems, fmt.Sprintf("line %d: the final stage copies %s from the builder; it must copy only the binary, %s (the `go build -o` output)", c.Line, strings.Join(c.Sources, " "), b.Binary))
		default:
			binaryCopies = append(binaryCopies, c)
		}
	}
	if len(binaryCopies) == 0 {
		problems = append(problems, fmt.Sprintf("the final stage does not COPY --from=%s %s: the image has no manager binary", b.BuilderRef, b.Binary))
		return problems
	}
	installed := copyTarget(workdirAt(f, binaryCopies[0].Line), binaryCopies[0].Dest, b.Binary)
	entry := lastCommand[*instructions.EntrypointCommand](f)
	if entry == nil {
		return append(problems, fmt.Sprintf("the final stage has no ENTRYPOINT; it must be [%q]", installed))
	}
	words := entry.CmdLine
	switch {
	case entry.PrependShell:
		problems = append(problems, fmt.Sprintf("line %d: ENTRYPOINT is in shell form, which needs /bin/sh (distroless and scratch have none); write it as [%q]", line(entry.Location()), installed))
	case len(words) == 0 || path.Clean(words[0]) != installed:
		problems = append(problems, fmt.Sprintf("line %d: ENTRYPOINT runs %v, but the binary is installed at %s", line(entry.Location()), words, installed))
	}
	return problems
}

// checkUser wants a numeric, non-root UID (and GID): the Deployment sets
// runAsNonRoot without runAsUser, and the kubelet refuses to start an image
// whose user is a name ("nonroot"), because it cannot verify a name is not root.
func checkUser(f *instructions.Stage) []string {
	u := lastCommand[*instructions.UserCommand](f)
	if u == nil {
		return []string{"the final stage sets no USER; it must run as a non-root numeric user: USER 65532:65532"}
	}
	at := line(u.Location())
	user, group, _ := strings.Cut(strings.TrimSpace(u.User), ":")
	uid, err := strconv.Atoi(user)
	switch {
	case err != nil:
		return []string{fmt.Sprintf("line %d: USER %s is not numeric; with runAsNonRoot (config/manager) the kubelet refuses an image user it cannot verify as non-root: use USER 65532:65532", at, u.User)}
	case uid == 0:
		return []string{fmt.Sprintf("line %d: USER %s is root; use USER 65532:65532", at, u.User)}
	}
	if group != "" {
		if gid, err := strconv.Atoi(group); err != nil || gid == 0 {
			return []string{fmt.Sprintf("line %d: USER %s: the group must be a numeric non-root GID; use USER 65532:65532", at, u.User)}
		}
	}
	return nil
}

// lastCommand is the stage's last instruction of type T, or nil.
func lastCommand[T instructions.Command](s *instructions.Stage) T {
	var last T
	for _, cmd := range s.Commands {
		if c, ok := cmd.(T); ok {
			last = c
		}
	}
	return last
}

// workdirAt is the stage's working directory at line.
func workdirAt(s *instructions.Stage, at int) string {
	wd := "/"
	for _, cmd := range s.Commands {
		if w, ok := cmd.(*instructions.WorkdirCommand); ok && line(w.Location()) < at {
			wd = resolve(wd, w.Path)
		}
	}
	return wd
}

// copyTarget is where COPY puts the file src when told dest in directory wd.
func copyTarget(wd, dest, src string) string {
	if dest == "." || strings.HasSuffix(dest, "/") {
		return path.Join(resolve(wd, dest), path.Base(src))
	}
	return resolve(wd, dest)
}

// CheckBuildFlags checks the builder's `go build` against the Makefile's
// build target: the same environment (CGO_ENABLED=0 in both), the same
// flags (-trimpath in both, the same -ldflags, -tags, ...) and packages;
// only the output path and the target platform may differ. makefile is
// the Makefile's text, run in dir.
func CheckBuildFlags(b *Build, makefile, dir string) []string {
	mk, err := MakeGoBuild(makefile, dir, "build")
	if err != nil {
		return []string{err.Error()}
	}
	dk := b.GoBuild
	var problems []string
	where := fmt.Sprintf("the Dockerfile's `go build` (line %d)", b.GoBuildLine)
	if v := dk.Env["CGO_ENABLED"]; v != "0" {
		problems = append(problems, fmt.Sprintf("%s runs with CGO_ENABLED=%q; it must be 0: distroless/static and scratch have no C library", where, v))
	}
	if v := mk.Env["CGO_ENABLED"]; v != "0" {
		problems = append(problems, fmt.Sprintf("the Makefile's build target runs with CGO_ENABLED=%q; it must be 0, like the image build", v))
	}
	if _, ok := dk.Flags["-trimpath"]; !ok {
		problems = append(problems, where+" lacks -trimpath: the binary would carry the builder's file paths")
	}
	platform := map[string]bool{"GOOS": true, "GOARCH": true, "GOARM": true, "GOARM64": true, "GOAMD64": true, "GO386": true}
	for _, k := range unionKeys(dk.Env, mk.Env) {
		if platform[k] || k == "CGO_ENABLED" {
			continue
		}
		if dv, mv := value(dk.Env, k), value(mk.Env, k); dv != mv {
			problems = append(problems, fmt.Sprintf("%s sets %s=%s but `make build` sets %s=%s; they must build the same binary", where, k, dv, k, mv))
		}
	}
	for _, k := range unionKeys(dk.Flags, mk.Flags) {
		if dv, mv := value(dk.Flags, k), value(mk.Flags, k); dv != mv {
			problems = append(problems, fmt.Sprintf("%s has %s but `make build` has %s; the flags must be the same", where, flagText(k, dk.Flags), flagText(k, mk.Flags)))
		}
	}
	if !slices.Equal(dk.Packages, mk.Packages) {
		problems = append(problems, fmt.Sprintf("%s builds %v but `make build` builds %v", where, dk.Packages, mk.Packages))
	}
	for env, arg := range map[string]string{"GOOS": "TARGETOS", "GOARCH": "TARGETARCH"} {
		v, set := dk.Env[env]
		if !set {
			continue
		}
		if !strings.Contains(v, "${"+arg+"}") {
			problems = append(problems, fmt.Sprintf("%s sets %s=%s; it must follow the target platform, ${%s}, or multi-platform images get the wrong binary", where, env, v, arg))
			continue
		}
		if !declaresArg(b.Builder, arg) {
			problems = append(problems, fmt.Sprintf("%s uses ${%s}, but the builder stage does not declare ARG %s, so it is empty", where, arg, arg))
		}
	}
	return problems
}

func declaresArg(s *instructions.Stage, name string) bool {
	for _, cmd := range s.Commands {
		if a, ok := cmd.(*instructions.ArgCommand); ok {
			for _, kv := range a.Args {
				if kv.Key == name {
					return true
				}
			}
		}
	}
	return false
}

func unionKeys(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func value(m map[string]string, k string) string {
	v, ok := m[k]
	if !ok {
		return "(unset)"
	}
	return v
}

func flagText(k string, flags map[string]string) string {
	v, ok := flags[k]
	switch {
	case !ok:
		return "no " + k
	case v == "":
		return k
	default:
		return fmt.Sprintf("%s=%q", k, v)
	}
}

// CheckCrossCompile checks the builder runs on the build machine's own
// platform (FROM --platform=$BUILDPLATFORM) and cross-compiles with
// GOOS/GOARCH: otherwise a multi-platform build runs the Go compiler under
// emulation, many times slower.
func CheckCrossCompile(b *Build) []string {
	if platform, err := ShellWords(b.Builder.Platform); err != nil || !strings.Contains(platform, "${BUILDPLATFORM}") {
		return []string{fmt.Sprintf("the builder stage (line %d) does not run on the build machine's platform: write FROM --platform=$BUILDPLATFORM %s, and let GOOS/GOARCH pick the target", line(b.Builder.Location), b.Builder.BaseName)}
	}
	if _, ok := b.GoBuild.Env["GOARCH"]; !ok {
		return []string{fmt.Sprintf("the builder runs on $BUILDPLATFORM but its `go build` (line %d) sets no GOARCH=${TARGETARCH}: every image would get the build machine's binary", b.GoBuildLine)}
	}
	return nil
}

// CheckBuilderCopies checks the builder copies only BuilderSources from the
// build context, each to the same path under the build's WORKDIR.
func CheckBuilderCopies(b *Build, root string) []string {
	var problems []string
	for _, c := range contextCopies(b.Builder) {
		if c.Cmd == "ADD" {
			problems = append(problems, fmt.Sprintf("line %d: ADD in the builder stage; use COPY (ADD also fetches URLs and unpacks archives)", c.Line))
			continue
		}
		wd := workdirAt(b.Builder, c.Line)
		for _, src := range c.Sources {
			s := cleanSource(src)
			if s == "." {
				problems = append(problems, fmt.Sprintf("line %d: COPY %s copies the whole build context into the builder; copy only %s", c.Line, src, strings.Join(BuilderSources, ", ")))
				continue
			}
			if !slices.Contains(BuilderSources, s) {
				problems = append(problems, fmt.Sprintf("line %d: the builder copies %s, which is not part of the manager; copy only %s", c.Line, src, strings.Join(BuilderSources, ", ")))
				continue
			}
			want := path.Join(b.Workdir, s)
			got := copyTarget(wd, c.Dest, s)
			if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(s))); err == nil && fi.IsDir() {
				got = resolve(wd, c.Dest) // COPY copies a directory's contents into dest
			}
			if got != want {
				problems = append(problems, fmt.Sprintf("line %d: COPY %s %s lands at %s, but `go build` in %s expects it at %s", c.Line, src, c.Dest, got, b.Workdir, want))
			}
		}
	}
	return problems
}

// GoPackage is the part of `go list -json` output the checks use.
type GoPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *struct {
		Path string
		Main bool
	}
	GoFiles, CgoFiles, CFiles, CXXFiles, MFiles, HFiles, FFiles, SFiles []string
	SwigFiles, SwigCXXFiles, SysoFiles, EmbedFiles                      []string
}

// ListPackages runs `go list -deps -json .` in root for one target
// platform, as the image build compiles: CGO_ENABLED=0.
func ListPackages(root, goos, goarch, tags string) ([]GoPackage, error) {
	args := []string{"list", "-deps", "-json"}
	if tags != "" {
		args = append(args, "-tags="+tags)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps -json . (GOOS=%s GOARCH=%s): %v: %s", goos, goarch, err, stderr.String())
	}
	var pkgs []GoPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p GoPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// NeededFiles returns the repository files (slash-separated, relative to
// root) the binary is compiled from, by package import path: every file of
// every package of the main module, or otherwise inside root (a local
// replace). Standard and module-cache packages are fetched by the build.
func NeededFiles(root string, pkgs []GoPackage) (map[string][]string, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	needed := map[string][]string{}
	for _, p := range pkgs {
		if p.Standard {
			continue
		}
		rel, err := filepath.Rel(absRoot, p.Dir)
		inside := err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
		if !inside && (p.Module == nil || !p.Module.Main) {
			continue
		}
		for _, list := range [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.MFiles, p.HFiles, p.FFiles,
			p.SFiles, p.SwigFiles, p.SwigCXXFiles, p.SysoFiles, p.EmbedFiles} {
			for _, f := range list {
				needed[p.ImportPath] = append(needed[p.ImportPath], path.Join(filepath.ToSlash(rel), f))
			}
		}
	}
	return needed, nil
}

// CheckPackagesCopied checks every file the binary is compiled from, plus
// go.mod and go.sum, is inside what the builder copies.
func CheckPackagesCopied(b *Build, root string, needed map[string][]string) []string {
	var (
		problems []string
		sources  []string
	)
	for _, c := range contextCopies(b.Builder) {
		for _, s := range c.Sources {
			sources = append(sources, cleanSource(s))
		}
	}
	covered := func(f string) bool {
		for _, s := range sources {
			if s == "." || f == s || strings.HasPrefix(f, s+"/") {
				return true
			}
		}
		return false
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil && !covered(f) {
			problems = append(problems, fmt.Sprintf("%s is not COPYed into the builder stage before `go build`: add it to the COPY of the module files", f))
		}
	}
	var importPaths []string
	for ip := range needed {
		importPaths = append(importPaths, ip)
	}
	sort.Strings(importPaths)
	for _, ip := range importPaths {
		var missing []string
		for _, f := range needed[ip] {
			if !covered(f) {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			continue
		}
		top, _, isDir := strings.Cut(missing[0], "/")
		what := fmt.Sprintf("its directory %s/ is", path.Dir(missing[0]))
		hint := fmt.Sprintf("COPY %s/ %s/", top, top)
		if !isDir {
			what = fmt.Sprintf("its files %s are", strings.Join(missing, ", "))
			hint = fmt.Sprintf("COPY %s %s", top, top)
		}
		also := ""
		if !slices.Contains(BuilderSources, top) {
			also = fmt.Sprintf("; also add %q to BuilderSources in test/dockerfile and a !%s line to .dockerignore", top, top)
		}
		problems = append(problems, fmt.Sprintf("package %s is compiled into the manager but %s not COPYed into the builder stage: add `%s` to the Dockerfile before `go build`%s",
			ip, what, hint, also))
	}
	return problems
}

// goVersionRe matches a golang image tag: golang:1.26, golang:1.26.3-bookworm.
var goVersionRe = regexp.MustCompile(`^(?:docker\.io/)?(?:library/)?golang:(\d+)\.(\d+)(?:\.(\d+))?(?:[-@].*)?$`)

// CheckGoVersion checks the builder's golang image is at least the go
// version go.mod asks for (or the build would download another toolchain,
// or fail with GOTOOLCHAIN=local).
func CheckGoVersion(b *Build, goMod string) []string {
	want := goDirective(goMod)
	if want == nil {
		return []string{"go.mod has no go directive"}
	}
	m := goVersionRe.FindStringSubmatch(b.Builder.BaseName)
	if m == nil {
		return []string{fmt.Sprintf("the builder stage is FROM %s; use a golang:X.Y image pinned to the go.mod version (%d.%d)", b.Builder.BaseName, want[0], want[1])}
	}
	have := []int{atoi(m[1]), atoi(m[2]), 1 << 30} // golang:1.26 is the newest 1.26.x
	if m[3] != "" {
		have[2] = atoi(m[3])
	}
	if slices.Compare(have, want) < 0 {
		return []string{fmt.Sprintf("the builder stage is FROM %s, older than go.mod's go %d.%d.%d", b.Builder.BaseName, want[0], want[1], want[2])}
	}
	return nil
}

func goDirective(goMod string) []int {
	for _, line := range strings.Split(goMod, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "go" {
			parts := strings.Split(f[1], ".")
			v := []int{0, 0, 0}
			for i := 0; i < len(parts) && i < 3; i++ {
				v[i] = atoi(parts[i])
			}
			return v
		}
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// CheckDockerignore checks .dockerignore leaves in the build context every
// path any stage copies from it, and every file below those paths.
func CheckDockerignore(d *Dockerfile, root string, ignore *Dockerignore) []string {
	var problems []string
	for i := range d.Stages {
		for _, c := range contextCopies(&d.Stages[i]) {
			for _, src := range c.Sources {
				s := cleanSource(src)
				if s == "." { // the whole context, minus what is ignored: nothing to miss
					continue
				}
				if excluded, by := ignore.Excluded(s); excluded {
					problems = append(problems, fmt.Sprintf("line %d copies %s, but .dockerignore excludes it (pattern %q): the build would fail", c.Line, src, by))
					continue
				}
				var hidden []string
				_ = filepath.WalkDir(filepath.Join(root, filepath.FromSlash(s)), func(p string, e fs.DirEntry, err error) error {
					if err != nil || e.IsDir() {
						return nil
					}
					rel, _ := filepath.Rel(root, p)
					rel = filepath.ToSlash(rel)
					if excluded, by := ignore.Excluded(rel); excluded {
						hidden = append(hidden, fmt.Sprintf("%s (pattern %q)", rel, by))
					}
					return nil
				})
				if len(hidden) > 0 {
					if len(hidden) > 5 {
						hidden = append(hidden[:5], fmt.Sprintf("and %d more", len(hidden)-5))
					}
					problems = append(problems, fmt.Sprintf("line %d copies %s, but .dockerignore excludes files in it: %s", c.Line, src, strings.Join(hidden, ", ")))
				}
			}
		}
	}
	return problems
}
