package dockerfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// project is the repository's build files, read once.
type project struct {
	dockerfile, makefile, dockerignore, goMod string
}

func readProject(t *testing.T) project {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		return string(b)
	}
	// make reads the files the Makefile includes from root.
	p := project{dockerfile: read("Dockerfile"), goMod: read("go.mod"), makefile: read("Makefile")}
	if b, err := os.ReadFile(filepath.Join(root, ".dockerignore")); err == nil {
		p.dockerignore = string(b)
	} else {
		t.Errorf(".dockerignore is missing (%v): without it the whole repository, .git and bin/ included, is sent as the build context", err)
	}
	return p
}

var (
	neededOnce sync.Once
	needed     map[string]map[string][]string // by platform
	neededErr  error
)

// neededFiles lists the files the manager is compiled from, for the
// platforms the image is built for.
func neededFiles(t *testing.T) map[string]map[string][]string {
	t.Helper()
	neededOnce.Do(func() {
		needed = map[string]map[string][]string{}
		for _, arch := range []string{"amd64", "arm64"} {
			pkgs, err := ListPackages(root, "linux", arch, "")
			if err != nil {
				neededErr = err
				return
			}
			files, err := NeededFiles(root, pkgs)
			if err != nil {
				neededErr = err
				return
			}
			if len(files) == 0 {
				neededErr = errNoPackages
				return
			}
			needed["linux/"+arch] = files
		}
	})
	if neededErr != nil {
		t.Fatal(neededErr)
	}
	return needed
}

var errNoPackages = errors.New("go list found no package of the module")

// checkAll runs every check on the given texts and returns the problems.
func checkAll(t *testing.T, p project) []string {
	t.Helper()
	d, err := ParseDockerfile(p.dockerfile)
	if err != nil {
		return []string{"the Dockerfile does not parse: " + err.Error()}
	}
	problems := CheckStages(d)
	b, err := Analyse(d)
	if err != nil {
		return append(problems, err.Error())
	}
	problems = append(problems, CheckFinal(d, b)...)
	problems = append(problems, CheckBuildFlags(b, p.makefile, root)...)
	problems = append(problems, CheckCrossCompile(b)...)
	problems = append(problems, CheckBuilderCopies(b, root)...)
	problems = append(problems, CheckGoVersion(b, p.goMod)...)
	for _, files := range neededFiles(t) {
		problems = append(problems, CheckPackagesCopied(b, root, files)...)
	}
	ignore, err := ParseDockerignore(p.dockerignore)
	if err != nil {
		return append(problems, err.Error())
	}
	return append(problems, CheckDockerignore(d, root, ignore)...)
}

func report(t *testing.T, problems []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range problems {
		if !seen[p] {
			t.Error(p)
			seen[p] = true
		}
	}
}

// TestDockerfile checks the repository's Dockerfile, Makefile and
// .dockerignore, one subtest per rule.
func TestDockerfile(t *testing.T) {
	p := readProject(t)
	d, err := ParseDockerfile(p.dockerfile)
	if err != nil {
		t.Fatalf("the Dockerfile does not parse: %v", err)
	}
	t.Run("multi-stage", func(t *testing.T) { report(t, CheckStages(d)) })
	b, err := Analyse(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("final stage: distroless, non-root, the binary only", func(t *testing.T) { report(t, CheckFinal(d, b)) })
	t.Run("go build matches make build", func(t *testing.T) { report(t, CheckBuildFlags(b, p.makefile, root)) })
	t.Run("builder cross-compiles", func(t *testing.T) { report(t, CheckCrossCompile(b)) })
	t.Run("builder copies only the manager's code", func(t *testing.T) { report(t, CheckBuilderCopies(b, root)) })
	t.Run("builder image has go.mod's Go", func(t *testing.T) { report(t, CheckGoVersion(b, p.goMod)) })
	t.Run("every package of the binary is copied", func(t *testing.T) {
		for platform, files := range neededFiles(t) {
			if len(files) < 5 {
				t.Errorf("go list found only %d packages of the module for %s; expected main, api, controllers, internal/...", len(files), platform)
			}
			report(t, CheckPackagesCopied(b, root, files))
		}
	})
	t.Run(".dockerignore keeps what is copied", func(t *testing.T) {
		ignore, err := ParseDockerignore(p.dockerignore)
		if err != nil {
			t.Fatal(err)
		}
		report(t, CheckDockerignore(d, root, ignore))
		for _, secretish := range []string{".git/config", "bin/manager", "hack/demo/main.go", "config/manager/manager.yaml"} {
			if excluded, _ := ignore.Excluded(secretish); !excluded {
				t.Errorf(".dockerignore lets %s into the build context; the image build needs only %s", secretish, strings.Join(BuilderSources, ", "))
			}
		}
	})
}

// TestChecksFindMistakes breaks a good build on purpose, one way at a time,
// and expects the checks to say what is wrong: the checks above pass only
// because the build is right, not because they check nothing.
func TestChecksFindMistakes(t *testing.T) {
	good := project{
		dockerfile: `# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY main.go main.go
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
# a comment inside a continuation is dropped
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    # like this one
    go build -trimpath -ldflags="-s -w" \
      -o manager .

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
`,
		makefile: `GO ?= go
LOCALBIN ?= $(CURDIR)/bin
LDFLAGS ?= -s   -w
.PHONY: build
build: ## Build.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager .
`,
		dockerignore: "*\n!go.mod\n!go.sum\n!main.go\n!api/\n!controllers/\n!internal/\n",
		goMod:        "module github.com/credsync/credsync\n\ngo 1.26.0\n",
	}
	if problems := checkAll(t, good); len(problems) > 0 {
		t.Fatalf("the good build has problems:\n%s", strings.Join(problems, "\n"))
	}

	tests := []struct {
		name        string
		field       *string // which text of the project to change
		old, new    string
		wantProblem string
	}{
		{"single stage", nil, "", "", "multi-stage"},
		{"final stage on a full distribution", &good.dockerfile, "gcr.io/distroless/static:nonroot", "debian:12", "must be gcr.io/distroless/... or scratch"},
		{"user by name", &good.dockerfile, "USER 65532:65532", "USER nonroot", "USER nonroot is not numeric"},
		{"root user", &good.dockerfile, "USER 65532:65532", "USER 0", "is root"},
		{"no user", &good.dockerfile, "USER 65532:65532\n", "", "sets no USER"},
		{"final stage copies more than the binary", &good.dockerfile, "USER 65532", "COPY config/ /config/\nUSER 65532", "copies config/ from the build context"},
		{"final stage copies the sources", &good.dockerfile, "/workspace/manager .", "/workspace/ /", "must copy only the binary, /workspace/manager"},
		{"entrypoint in shell form", &good.dockerfile, `ENTRYPOINT ["/manager"]`, "ENTRYPOINT /manager", "shell form"},
		{"entrypoint elsewhere", &good.dockerfile, `ENTRYPOINT ["/manager"]`, `ENTRYPOINT ["/bin/manager"]`, "installed at /manager"},
		{"cgo on", &good.dockerfile, "CGO_ENABLED=0 GOOS", "CGO_ENABLED=1 GOOS", `CGO_ENABLED="1"`},
		{"make build with cgo", &good.makefile, "CGO_ENABLED=0 ", "", "the Makefile's build target runs with CGO_ENABLED"},
		{"no -trimpath", &good.dockerfile, "go build -trimpath", "go build", "lacks -trimpath"},
		{"other ldflags", &good.dockerfile, `-ldflags="-s -w"`, `-ldflags="-s"`, `has -ldflags="-s" but ` + "`make build`" + ` has -ldflags="-s -w"`},
		{"extra tags", &good.dockerfile, "go build -trimpath", "go build -tags=netgo -trimpath", "has -tags=\"netgo\" but `make build` has no -tags"},
		{"other package", &good.dockerfile, "-o manager .", "-o manager ./cmd", "builds [./cmd]"},
		{"no build target", &good.makefile, "build:", "compile:", "make build runs no `go build`"},
		{"no build rule", &good.makefile, ".PHONY: build\nbuild:", "compile:", `no "build" target`},
		{"hard-coded architecture", &good.dockerfile, "GOARCH=${TARGETARCH}", "GOARCH=amd64", "must follow the target platform"},
		{"TARGETARCH not declared", &good.dockerfile, "ARG TARGETARCH\n", "", "does not declare ARG TARGETARCH"},
		{"builder under emulation", &good.dockerfile, "FROM --platform=$BUILDPLATFORM golang", "FROM golang", "--platform=$BUILDPLATFORM"},
		{"whole context copied", &good.dockerfile, "COPY internal/ internal/", "COPY . .", "copies the whole build context"},
		{"hack copied", &good.dockerfile, "COPY internal/ internal/", "COPY internal/ internal/\nCOPY hack/ hack/", "copies hack/, which is not part of the manager"},
		{"directory copied flat", &good.dockerfile, "COPY api/ api/", "COPY api/ ./", "lands at /workspace, but"},
		{"internal not copied", &good.dockerfile, "COPY internal/ internal/\n", "", "not COPYed into the builder stage: add `COPY internal/ internal/`"},
		{"go.sum not copied", &good.dockerfile, "COPY go.mod go.sum ./", "COPY go.mod ./", "go.sum is not COPYed"},
		{"old Go", &good.dockerfile, "golang:1.26", "golang:1.22", "older than go.mod's go 1.26.0"},
		{"floating Go", &good.dockerfile, "golang:1.26", "golang:latest", "use a golang:X.Y image"},
		{"dockerignore excludes a source", &good.dockerignore, "!internal/\n", "", `copies internal/, but .dockerignore excludes it (pattern "*")`},
		{"dockerignore excludes files", &good.dockerignore, "!internal/\n", "!internal/\n**/*.go\n", "excludes files in it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			if tc.field == nil { // single stage: drop everything after the builder
				builder, _, found := strings.Cut(good.dockerfile, "\nFROM gcr.io")
				if !found {
					t.Fatal("test bug: no second stage in the Dockerfile")
				}
				p.dockerfile = builder
			} else {
				text := *tc.field
				if !strings.Contains(text, tc.old) {
					t.Fatalf("test bug: %q not in the text", tc.old)
				}
				broken := strings.Replace(text, tc.old, tc.new, 1)
				switch tc.field {
				case &good.dockerfile:
					p.dockerfile = broken
				case &good.makefile:
					p.makefile = broken
				case &good.dockerignore:
					p.dockerignore = broken
				}
			}
			problems := checkAll(t, p)
			for _, pr := range problems {
				if strings.Contains(pr, tc.wantProblem) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got:\n%s", tc.wantProblem, strings.Join(problems, "\n"))
		})
	}
}

func TestParseDockerfile(t *testing.T) {
	d, err := ParseDockerfile("ARG V=1\n# c\nFROM a AS One\nRUN x \\\n  # c\n\n  y\nfrom --platform=$BUILDPLATFORM b\ncopy [\"s p\", \"/d/\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.MetaArgs) != 1 || len(d.Stages) != 2 {
		t.Fatalf("want 1 global ARG and 2 stages, got %+v", d)
	}
	s := d.Stages[0]
	if s.Name != "one" || s.BaseName != "a" || len(s.Commands) != 1 || d.Ref(0) != "one" {
		t.Errorf("stage 0 = %+v", s)
	}
	if run, ok := s.Commands[0].(*instructions.RunCommand); !ok || strings.Join(RunScripts(run), "|") != "x   y" || line(run.Location()) != 4 {
		t.Errorf("stage 0's RUN = %#v", s.Commands[0])
	}
	if s := d.Stages[1]; s.BaseName != "b" || s.Platform != "$BUILDPLATFORM" || d.Ref(1) != "1" || d.Stage("1") != &d.Stages[1] || d.Stage("One") != &d.Stages[0] || d.Stage("2") != nil {
		t.Errorf("stage 1 = %+v", s)
	}
	c := copies(&d.Stages[1])
	if len(c) != 1 || c[0].Cmd != "COPY" || len(c[0].Sources) != 1 || c[0].Sources[0] != "s p" || c[0].Dest != "/d/" || c[0].Line != 9 {
		t.Errorf("COPY = %+v", c)
	}
	for _, bad := range []string{"FROM\n", "FROM a AS 1x\n", "FROM a\nCOPY x\n", "RUN x\n", "FROM a\nFROB x\n"} {
		if _, err := ParseDockerfile(bad); err == nil {
			t.Errorf("%q parsed", bad)
		} else if !strings.Contains(err.Error(), "line ") {
			t.Errorf("the error for %q names no line: %v", bad, err)
		}
	}
}

func TestFindGoBuild(t *testing.T) {
	b, ok, err := FindGoBuild(`go mod download && CGO_ENABLED=0 GOARCH=$TARGETARCH /usr/local/go/bin/go build --trimpath -ldflags '-X "main.v=${V:-dev}"  -s' -tags a,b -o=bin/m ./ ; echo done`)
	if err != nil || !ok {
		t.Fatalf("no go build found: %v", err)
	}
	want := map[string]string{"-trimpath": "", "-ldflags": `-X main.v=${V} -s`, "-tags": "a,b"}
	for k, v := range want {
		if b.Flags[k] != v {
			t.Errorf("flag %s = %q, want %q", k, b.Flags[k], v)
		}
	}
	if len(b.Flags) != len(want) || b.Output != "bin/m" || b.Env["GOARCH"] != "${TARGETARCH}" || b.Env["CGO_ENABLED"] != "0" || len(b.Packages) != 1 || b.Packages[0] != "./" {
		t.Errorf("go build = %+v", b)
	}

	for script, wantEnv := range map[string]string{
		"set -e; if true; then env GOOS=linux go build -o m .; fi":     "GOOS=linux",
		"echo a | (cd x && GOARCH=\"${A}\" \\\n go build .) || exit 1": "GOARCH=${A}",
		"go vet . && go  build .":                                      "",
	} {
		b, ok, err := FindGoBuild(script)
		if err != nil || !ok {
			t.Errorf("FindGoBuild(%q) = %v, %v", script, ok, err)
			continue
		}
		got := ""
		for k, v := range b.Env {
			got = k + "=" + v
		}
		if got != wantEnv || len(b.Packages) != 1 || b.Packages[0] != "." {
			t.Errorf("FindGoBuild(%q) = %+v", script, b)
		}
	}
	for _, script := range []string{"go mod download", "echo go build", "gofmt build ."} {
		if b, ok, err := FindGoBuild(script); ok || err != nil {
			t.Errorf("FindGoBuild(%q) = %+v, %v, %v; want no go build", script, b, ok, err)
		}
	}
	if _, _, err := FindGoBuild("go build -o 'm ."); err == nil {
		t.Error("an unterminated quote parsed")
	}
}

// TestRunScripts finds the `go build` of a RUN in exec form, through sh -c,
// and in a heredoc.
func TestRunScripts(t *testing.T) {
	d, err := ParseDockerfile(`FROM golang
RUN ["go", "build", "-o", "a b", "."]
RUN ["/bin/sh", "-c", "go mod download && go build -o m ."]
RUN <<EOF
set -e
CGO_ENABLED=0 go build -o m .
EOF
`)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a b", "m", "m"} {
		run := d.Stages[0].Commands[i].(*instructions.RunCommand)
		b, err := runGoBuild(run)
		if err != nil || b == nil || b.Output != want {
			t.Errorf("RUN %d: go build = %+v, %v; want -o %q", i, b, err, want)
		}
	}
}

func TestDockerignoreMatching(t *testing.T) {
	ign, err := ParseDockerignore("# comment\n/bin/\n*.md\n!README.md\n**/testdata\ninternal/**/*_test.go\n*\n!api\n!/internal/\ninternal/secret[0-9].txt\n")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"bin/manager":                       true,
		"README.md":                         true, // "*" comes after "!README.md"
		"api/v1alpha1/types.go":             false,
		"internal/vendors/caller.go":        false,
		"internal/vendors/x/testdata/seed":  false, // "!/internal/" comes later
		"internal/vendors/caller_test.go":   false,
		"internal/secret1.txt":              true,
		"internal/secretA.txt":              false,
		"controllers/remotecredential.go":   true,
		"apiextra/x":                        true,
		"hack/demo/main.go":                 true,
		"internal/vendors/tines/client.go":  false,
		"internal/vendors/tines/x_test.go":  false,
		".git/config":                       true,
		"api":                               false,
		"internal/../controllers/a.go":      true,
		"./internal/vendors/tines/tines.go": false,
	} {
		if got, by := ign.Excluded(p); got != want {
			t.Errorf("Excluded(%q) = %v (by %q), want %v", p, got, by, want)
		}
	}
	ign, _ = ParseDockerignore("**/testdata\ninternal/**/*_test.go\n")
	for p, want := range map[string]bool{
		"testdata/a":                      true,
		"internal/vendors/x/testdata/a":   true,
		"internal/vendors/caller_test.go": true,
		"internal/a_test.go":              true,
		"internal/vendors/caller.go":      false,
	} {
		if got, by := ign.Excluded(p); got != want {
			t.Errorf("Excluded(%q) = %v (by %q), want %v", p, got, by, want)
		}
	}
}
