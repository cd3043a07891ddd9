package cli

import (
	"fmt"
	"strings"
)

// helpRenderer writes the layout of AppHelpTemplate, CommandHelpTemplate and
// SubcommandHelpTemplate (template.go) without text/template; each method
// mirrors one template and says which.
type helpRenderer struct {
	b      strings.Builder
	wrapAt int
}

// render writes the layout for data (*App or *Command), turning a panic of
// a method it calls into an error as text/template does.
func (r *helpRenderer) render(templ string, data interface{}) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("help for %T: %v", data, p)
		}
	}()
	switch d := data.(type) {
	case *App:
		r.app(d)
	case *Command:
		r.command(d, templ == SubcommandHelpTemplate)
	default:
		return fmt.Errorf("no help layout for %T", data)
	}
	return nil
}

func (r *helpRenderer) wrap(s string, offset int) string { return wrap(s, offset, r.wrapAt) }

// helpName is helpNameTemplate.
func (r *helpRenderer) helpName(helpName, usage string) {
	r.b.WriteString(r.wrap(helpName, 3))
	if usage != "" {
		r.b.WriteString(" - ")
		r.b.WriteString(r.wrap(usage, offset(helpName, 6)))
	}
}

// app is AppHelpTemplate.
func (r *helpRenderer) app(a *App) {
	r.b.WriteString("NAME:\n   ")
	r.helpName(a.HelpName, a.Usage)
	r.b.WriteString("\n\nUSAGE:\n   ")
	if a.UsageText != "" {
		r.b.WriteString(r.wrap(a.UsageText, 3))
	} else {
		r.b.WriteString(a.HelpName + " ")
		if len(a.VisibleFlags()) > 0 {
			r.b.WriteString("[global options]")
		}
		if len(a.Commands) > 0 {
			r.b.WriteString(" command [command options]")
		}
		r.argsUsage(a.ArgsUsage, a.Args)
	}
	if a.Version != "" && !a.HideVersion {
		r.b.WriteString("\n\nVERSION:\n   " + a.Version)
	}
	if a.Description != "" {
		r.b.WriteString("\n\nDESCRIPTION:\n   " + r.wrap(a.Description, 3))
	}
	if len(a.Authors) > 0 {
		r.b.WriteString("\n\nAUTHOR")
		r.authors(a.Authors)
	}
	if len(a.VisibleCommands()) > 0 {
		r.b.WriteString("\n\nCOMMANDS:")
		r.commandCategories(a.VisibleCategories())
	}
	r.options("GLOBAL OPTIONS:", a.VisibleFlagCategories(), a.VisibleFlags())
	if a.Copyright != "" {
		r.b.WriteString("\n\nCOPYRIGHT:\n   " + r.wrap(a.Copyright, 3))
	}
	r.b.WriteString("\n")
}

// command is CommandHelpTemplate, or SubcommandHelpTemplate (which adds
// the COMMANDS section) when sub is set.
func (r *helpRenderer) command(c *Command, sub bool) {
	r.b.WriteString("NAME:\n   ")
	r.helpName(c.HelpName, c.Usage)
	r.b.WriteString("\n\nUSAGE:\n   ")
	// usageTemplate
	if c.UsageText != "" {
		r.b.WriteString(r.wrap(c.UsageText, 3))
	} else {
		r.b.WriteString(c.HelpName)
		if len(c.VisibleFlags()) > 0 {
			r.b.WriteString(" [command options]")
		}
		r.argsUsage(c.ArgsUsage, c.Args)
	}
	if c.Category != "" {
		r.b.WriteString("\n\nCATEGORY:\n   " + c.Category)
	}
	if c.Description != "" {
		r.b.WriteString("\n\nDESCRIPTION:\n   " + r.wrap(c.Description, 3))
	}
	if sub && len(c.VisibleCommands()) > 0 {
		r.b.WriteString("\n\nCOMMANDS:")
		r.commandCategories(c.VisibleCategories())
	}
	r.options("OPTIONS:", c.VisibleFlagCategories(), c.VisibleFlags())
	r.b.WriteString("\n")
}

func (r *helpRenderer) argsUsage(argsUsage string, args bool) {
	if argsUsage != "" {
		r.b.WriteString(" " + argsUsage)
	} else if args {
		r.b.WriteString(" [arguments...]")
	}
}

// authors is authorsTemplate.
func (r *helpRenderer) authors(authors []*Author) {
	if len(authors) != 1 {
		r.b.WriteString("S")
	}
	r.b.WriteString(":\n   ")
	for i, a := range authors {
		if i > 0 {
			r.b.WriteString("\n   ")
		}
		fmt.Fprint(&r.b, a)
	}
}

// commandCategories is visibleCommandCategoryTemplate.
func (r *helpRenderer) commandCategories(cats []CommandCategory) {
	for _, cat := range cats {
		if cat.Name() == "" {
			r.commands(cat.VisibleCommands())
			continue
		}
		r.b.WriteString("\n   " + cat.Name() + ":")
		for _, c := range cat.VisibleCommands() {
			r.b.WriteString("\n     " + strings.Join(c.Names(), ", ") + "\t" + c.Usage)
		}
	}
}

// commands is visibleCommandTemplate.
func (r *helpRenderer) commands(cmds []*Command) {
	cv := offsetCommands(cmds, 5)
	for _, c := range cmds {
		s := strings.Join(c.Names(), ", ")
		r.b.WriteString("\n   " + s)
		r.b.WriteString(indent(subtract(cv, offset(s, 3)), ""))
		r.b.WriteString(r.wrap(c.Usage, cv))
	}
}

// options is the {{if .VisibleFlagCategories}}…{{else if .VisibleFlags}}
// part of the templates: visibleFlagCategoryTemplate or visibleFlagTemplate.
func (r *helpRenderer) options(title string, cats []VisibleFlagCategory, flags []Flag) {
	switch {
	case len(cats) > 0:
		r.b.WriteString("\n\n" + title)
		for _, cat := range cats {
			r.b.WriteString("\n   ")
			if cat.Name() != "" {
				r.b.WriteString(cat.Name() + "\n\n   ")
			}
			fl := cat.Flags()
			for i, f := range fl {
				fmt.Fprint(&r.b, f)
				if len(fl)-i == 1 {
					r.b.WriteString("\n")
				} else {
					r.b.WriteString("\n   ")
				}
			}
		}
	case len(flags) > 0:
		r.b.WriteString("\n\n" + title)
		for _, f := range flags {
			r.b.WriteString("\n   " + r.wrap(f.String(), 6))
		}
	}
}
