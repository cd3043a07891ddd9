package cli

import (
	"bytes"
	"strings"
	"testing"
	"text/tabwriter"
	"text/template"
)

// templateHelp is upstream's printHelpCustom (text/template), kept in the
// test to check that helpRenderer writes the same bytes.
func templateHelp(t *testing.T, templ string, data interface{}) string {
	t.Helper()
	const maxLineLength = 10000
	funcMap := template.FuncMap{
		"join":           strings.Join,
		"subtract":       subtract,
		"indent":         indent,
		"nindent":        nindent,
		"trim":           strings.TrimSpace,
		"wrap":           func(input string, offset int) string { return wrap(input, offset, maxLineLength) },
		"offset":         offset,
		"offsetCommands": offsetCommands,
	}
	var out bytes.Buffer
	w := tabwriter.NewWriter(&out, 1, 8, 2, ' ', 0)
	tp := template.Must(template.New("help").Funcs(funcMap).Parse(templ))
	for name, value := range map[string]string{
		"helpNameTemplate":                  helpNameTemplate,
		"usageTemplate":                     usageTemplate,
		"descriptionTemplate":               descriptionTemplate,
		"visibleCommandTemplate":            visibleCommandTemplate,
		"copyrightTemplate":                 copyrightTemplate,
		"versionTemplate":                   versionTemplate,
		"visibleFlagCategoryTemplate":       visibleFlagCategoryTemplate,
		"visibleFlagTemplate":               visibleFlagTemplate,
		"visibleGlobalFlagCategoryTemplate": strings.Replace(visibleFlagCategoryTemplate, "OPTIONS", "GLOBAL OPTIONS", -1),
		"authorsTemplate":                   authorsTemplate,
		"visibleCommandCategoryTemplate":    visibleCommandCategoryTemplate,
	} {
		template.Must(tp.New(name).Parse(value))
	}
	if err := tp.Execute(w, data); err != nil {
		t.Fatalf("text/template: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func rendererHelp(templ string, data interface{}) string {
	var out bytes.Buffer
	printHelpCustom(&out, templ, data, nil)
	return out.String()
}

func testApp(full bool) *App {
	a := &App{
		Name:  "demo",
		Usage: "a demo\nwith two lines",
		Flags: []Flag{
			&StringFlag{Name: "profile", Aliases: []string{"p"}, Value: "x", Usage: "the profile", EnvVars: []string{"DEMO_PROFILE"}},
			&BoolFlag{Name: "quiet", Usage: "say less"},
		},
		Commands: []*Command{
			{Name: "start", Aliases: []string{"up"}, Usage: "start it", Flags: []Flag{
				&IntFlag{Name: "nodes", Aliases: []string{"n"}, Value: 1, Usage: "node count"},
				&StringSliceFlag{Name: "extra", Usage: "extra settings", Category: "advanced"},
			}, Description: "Starts.\n\nTwice.", ArgsUsage: "[NAME]"},
			{Name: "image", Usage: "images", Subcommands: []*Command{
				{Name: "build", Usage: "build one", Category: "make"},
				{Name: "ls", Aliases: []string{"list"}, Usage: "list them", Args: true},
				{Name: "secret", Hidden: true},
			}},
			{Name: "hidden", Hidden: true},
		},
	}
	if full {
		a.Version = "v1.2.3"
		a.Description = "Long text."
		a.Authors = []*Author{{Name: "A", Email: "a@x"}, {Name: "B"}}
		a.Copyright = "(c) someone"
		a.ArgsUsage = "ARGS"
		a.Commands = append(a.Commands, &Command{Name: "net", Category: "network", Usage: "networks"})
	}
	return a
}

func TestHelpRendererMatchesTemplates(t *testing.T) {
	for _, full := range []bool{false, true} {
		a := testApp(full)
		a.Setup()
		if got, want := rendererHelp(AppHelpTemplate, a), templateHelp(t, AppHelpTemplate, a); got != want {
			t.Errorf("app help (full=%v):\n got %q\nwant %q", full, got, want)
		}
		for _, c := range a.Commands {
			c.HelpName = a.Name + " " + c.Name
			c.setup(&Context{App: a})
			for _, templ := range []string{CommandHelpTemplate, SubcommandHelpTemplate} {
				if got, want := rendererHelp(templ, c), templateHelp(t, templ, c); got != want {
					t.Errorf("help of %q (full=%v):\n got %q\nwant %q", c.Name, full, got, want)
				}
			}
		}
	}
}

func TestHelpRendererWrapAt(t *testing.T) {
	a := testApp(false)
	a.Usage = strings.Repeat("word ", 20)
	a.Setup()
	a.Commands[0].setup(&Context{App: a})
	var out bytes.Buffer
	printHelpCustom(&out, AppHelpTemplate, a, map[string]interface{}{"wrapAt": func() int { return 40 }})
	for _, line := range strings.Split(out.String(), "\n")[:4] {
		if len(line) > 40 {
			t.Errorf("line longer than wrapAt 40: %q", line)
		}
	}
}

// TestHelpRendererPartialOnPanic: a command whose categories were never set
// up panics in VisibleCategories; like text/template's error, the help
// stops there and the unflushed rest is dropped.
func TestHelpRendererPartialOnPanic(t *testing.T) {
	c := &Command{Name: "image", HelpName: "demo image", Usage: "images", Subcommands: []*Command{{Name: "build"}}}
	got := rendererHelp(SubcommandHelpTemplate, c)
	want := "NAME:\n   demo image - images\n\nUSAGE:\n   demo image\n\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
