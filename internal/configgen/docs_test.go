package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The documentation: the README, ARCHITECTURE.md and everything in docs/.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md", "ARCHITECTURE.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	fence      = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	comment    = regexp.MustCompile(`<!--.*?-->`)
	inlineLink = regexp.MustCompile(`\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`^\s*\[[^\]]+\]:\s*(\S+)`)
	scheme     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	heading    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	textLink   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	// A path into the repository, as the documentation names one in code.
	repoPath = regexp.MustCompile(`^(config|plugin|internal|cmd|e2e|bench|docs|\.ci)/[A-Za-z0-9_./-]*$`)
)

// prose returns a markdown file's lines outside fenced code blocks.
func prose(text string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			in = !in
			continue
		}
		if !in {
			out = append(out, line)
		}
	}
	return out
}

// anchors are the fragment ids GitHub gives a markdown file's headings.
func anchors(text string) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose(text) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		title := textLink.ReplaceAllString(m[2], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			ids[id+"-"+strconv.Itoa(n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

// Every relative link of the documentation leads to a file or directory of
// the repository, and a link to a heading (#...) to a heading that exists.
func TestDocumentationLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, doc := range docFiles(t, root) {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(doc)))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range prose(string(text)) {
			line = comment.ReplaceAllString(codeSpan.ReplaceAllString(line, ""), "")
			var targets []string
			for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
				targets = append(targets, m[1])
			}
			if m := refLink.FindStringSubmatch(line); m != nil {
				targets = append(targets, m[1])
			}
			for _, target := range targets {
				if scheme.MatchString(target) {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				file := filepath.Join(root, filepath.FromSlash(doc))
				if path != "" {
					file = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				}
				info, err := os.Stat(file)
				if err != nil {
					t.Errorf("%s (prose line %d): link %s: %v", doc, i+1, target, err)
					continue
				}
				if anchor == "" || info.IsDir() || !strings.HasSuffix(file, ".md") {
					continue
				}
				body, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(body))[anchor] {
					t.Errorf("%s (prose line %d): link %s: no heading #%s there", doc, i+1, target, anchor)
				}
			}
		}
	}
}

// Every repository path the documentation names in code (`config/...`,
// `plugin/...`) exists.
func TestDocumentationNamesOnlyPathsThatExist(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, doc := range docFiles(t, root) {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(doc)))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range prose(string(text)) {
			for _, span := range codeSpan.FindAllString(line, -1) {
				path := strings.Trim(span, "` ")
				if !repoPath.MatchString(path) {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(path))); err != nil {
					t.Errorf("%s names %s, which does not exist", doc, path)
				}
			}
		}
	}
}

func TestAnchors(t *testing.T) {
	got := anchors("# Intune, the `input`\n## Nothing is lost\n```\n# not a heading\n```\n## Nothing is lost\n### [Link](x.md) 2.0\n")
	for _, want := range []string{"intune-the-input", "nothing-is-lost", "nothing-is-lost-1", "link-20"} {
		if !got[want] {
			t.Errorf("no anchor %s in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a line of a code block is taken for a heading")
	}
}
