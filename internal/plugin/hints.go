package plugin

import (
	_ "embed" // the troubleshooting guide
	"strings"
)

// troubleshooting is docs/troubleshooting.md, copied here by make generate
// (go:embed cannot reach above the package); a test keeps the copy current.
//
//go:embed troubleshooting.md
var troubleshooting string

// docsURL is where the troubleshooting guide is published.
const docsURL = "https://github.com/credsync/credsync/blob/main/docs/troubleshooting.md"

// nextStep is what the troubleshooting guide says to do about a Ready
// reason: the bullets of its section, or its first paragraph, and where
// to read more.
func nextStep(reason string) string {
	section := guideSection(reason)
	if section == "" {
		return "See " + docsURL + "."
	}
	var steps []string
	for _, para := range strings.Split(section, "\n\n") {
		para = strings.TrimSpace(para)
		for _, item := range strings.Split("\n"+para, "\n- ") {
			item = strings.Join(strings.Fields(item), " ")
			if item != "" && strings.HasPrefix(para, "- ") {
				steps = append(steps, "- "+item)
			}
		}
	}
	if len(steps) == 0 {
		first, _, _ := strings.Cut(strings.TrimSpace(section), "\n\n")
		steps = append(steps, strings.Join(strings.Fields(first), " "))
	}
	return strings.Join(append(steps, "More: "+docsURL+"#"+strings.ToLower(reason)), "\n")
}

// guideSection is the text of the guide's "### reason" section.
func guideSection(reason string) string {
	_, rest, ok := strings.Cut(troubleshooting, "\n### "+reason+"\n")
	if !ok {
		return ""
	}
	for _, end := range []string{"\n### ", "\n## "} {
		if i := strings.Index(rest, end); i >= 0 {
			rest = rest[:i]
		}
	}
	return rest
}
