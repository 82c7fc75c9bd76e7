package policy

import (
	"errors"
	"fmt"
	"strings"
)

// This file holds the two things done around goslo.policy rather than inside it:
//
//  1. Role names with a colon. Barbican's legacy quota role is
//     "key-manager:service-admin", and "role:key-manager:service-admin" does not
//     parse in goslo (its lexer makes every ':' a separator). goslo does accept a
//     quoted right-hand side, "role:'key-manager:service-admin'", and hands the
//     unquoted text to the role check, so such checks are rewritten to that form
//     before parsing. Credentials need no mapping.
//
//  2. A syntax check of our own before goslo parses a rule. goslo lexes in a
//     goroutine that blocks forever when its parser stops early on a syntax error,
//     so every bad rule would leak a goroutine; checking first means goslo only
//     ever sees rules that parse to the end. The checker mirrors goslo's lexer and
//     grammar: whatever it accepts, goslo accepts.

// prepare rewrites a check string into what goslo can parse and verifies its syntax.
func prepare(check string) (string, error) {
	// oslo splits on any whitespace; goslo only on spaces and tabs. Line breaks
	// reach us from YAML block scalars.
	check = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(check)
	check = quoteColonRoles(check)
	if err := checkSyntax(check); err != nil {
		return "", err
	}
	return check, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// quoteColonRoles turns role:a:b into role:'a:b' wherever it stands as a check.
func quoteColonRoles(s string) string {
	if !strings.Contains(s, "role:") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	i := 0
	atStart := true // at a position where a new check may begin
	for i < len(s) {
		c := s[i]
		switch {
		case c == '%' && i+1 < len(s) && s[i+1] == '(':
			// a variable: copy through ")s" untouched
			end := strings.Index(s[i:], ")s")
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			b.WriteString(s[i : i+end+2])
			i += end + 2
			atStart = false
		case c == '\'' || c == '"':
			// a quoted constant: copy through the closing delimiter
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				b.WriteString(s[i:])
				return b.String()
			}
			b.WriteString(s[i : j+1])
			i = j + 1
			atStart = false
		case atStart && strings.HasPrefix(s[i:], "role:"):
			j := i + len("role:")
			for j < len(s) && !isBlank(s[j]) && s[j] != '(' && s[j] != ')' {
				j++
			}
			val := s[i+len("role:") : j]
			if strings.Contains(val, ":") && !strings.HasPrefix(val, "%(") && !strings.ContainsAny(val, `'"\`) {
				b.WriteString("role:'")
				b.WriteString(val)
				b.WriteByte('\'')
			} else {
				b.WriteString(s[i:j])
			}
			i = j
			atStart = false
		default:
			b.WriteByte(c)
			atStart = isBlank(c) || c == '('
			i++
		}
	}
	return b.String()
}

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tColon
	tAnd
	tOr
	tNot
	tTrue  // @
	tFalse // !
	tStr   // unquoted word
	tConst // quoted string, True, False, integer
	tVar   // %(name)s
)

type token struct {
	kind tokKind
	pos  int
	val  string
}

// lex splits a check string the way goslo's lexer does.
func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i >= len(s) {
			return append(toks, token{kind: tEOF, pos: i}), nil
		}
		start := i
		switch c := s[i]; {
		case c == '%' && i+1 < len(s) && s[i+1] == '(':
			j := i + 2
			for {
				if j >= len(s) || isBlank(s[j]) {
					return nil, fmt.Errorf("column %d: unterminated variable", start)
				}
				if s[j] == ')' && j+1 < len(s) && s[j+1] == 's' {
					break
				}
				j++
			}
			toks = append(toks, token{tVar, start, s[i+2 : j]})
			i = j + 2
		case c == '(':
			toks = append(toks, token{tLParen, start, "("})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, start, ")"})
			i++
		case c == ':':
			toks = append(toks, token{tColon, start, ":"})
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for {
				if j >= len(s) || s[j] == '\n' {
					return nil, fmt.Errorf("column %d: unterminated string", start)
				}
				if s[j] == '\\' {
					if j+1 >= len(s) || s[j+1] == '\n' {
						return nil, fmt.Errorf("column %d: unterminated string", start)
					}
					j += 2
					continue
				}
				if s[j] == c {
					break
				}
				j++
			}
			toks = append(toks, token{tConst, start, s[i+1 : j]})
			i = j + 1
		default:
			j := i
			for j < len(s) && !isBlank(s[j]) && s[j] != ':' && s[j] != '(' && s[j] != ')' {
				j++
			}
			w := s[i:j]
			k := tStr
			switch {
			case w == "and":
				k = tAnd
			case w == "or":
				k = tOr
			case w == "not":
				k = tNot
			case w == "@":
				k = tTrue
			case w == "!":
				k = tFalse
			case w == "True" || w == "False" || isInteger(w):
				k = tConst
			}
			toks = append(toks, token{k, start, w})
			i = j
		}
	}
}

func isInteger(w string) bool {
	if w != "" && (w[0] == '+' || w[0] == '-') {
		w = w[1:]
	}
	if w == "" {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return true
}

type syntaxChecker struct {
	toks  []token
	i     int
	depth int
}

var errTooDeep = errors.New("nested too deeply")

// maxDepth bounds recursion on hostile input; real rules nest three or four levels.
const maxDepth = 100

// checkSyntax reports whether goslo will parse s without error.
func checkSyntax(s string) error {
	toks, err := lex(s)
	if err != nil {
		return err
	}
	p := &syntaxChecker{toks: toks}
	if p.peek().kind == tEOF {
		return nil // the empty check: always true, as in oslo
	}
	if err := p.expr(); err != nil {
		return err
	}
	if t := p.peek(); t.kind != tEOF {
		return fmt.Errorf("column %d: unexpected %q", t.pos, t.val)
	}
	return nil
}

func (p *syntaxChecker) peek() token { return p.toks[p.i] }
func (p *syntaxChecker) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *syntaxChecker) expr() error {
	if p.depth++; p.depth > maxDepth {
		return errTooDeep
	}
	defer func() { p.depth-- }()
	if err := p.unary(); err != nil {
		return err
	}
	for k := p.peek().kind; k == tAnd || k == tOr; k = p.peek().kind {
		p.next()
		if err := p.unary(); err != nil {
			return err
		}
	}
	return nil
}

func (p *syntaxChecker) unary() error {
	if p.depth++; p.depth > maxDepth {
		return errTooDeep
	}
	defer func() { p.depth-- }()
	t := p.next()
	switch t.kind {
	case tNot:
		return p.unary()
	case tLParen:
		if err := p.expr(); err != nil {
			return err
		}
		if c := p.next(); c.kind != tRParen {
			return fmt.Errorf("column %d: expected ')'", c.pos)
		}
		return nil
	case tTrue, tFalse:
		return nil
	case tStr:
		if c := p.next(); c.kind != tColon {
			return fmt.Errorf("column %d: expected ':' after %q", c.pos, t.val)
		}
		switch r := p.next(); r.kind {
		case tStr, tConst, tVar:
			return nil
		default:
			return fmt.Errorf("column %d: expected a value after %q", r.pos, t.val+":")
		}
	case tConst:
		if c := p.next(); c.kind != tColon {
			return fmt.Errorf("column %d: expected ':' after %q", c.pos, t.val)
		}
		if r := p.next(); r.kind != tVar {
			return fmt.Errorf("column %d: a constant can only be compared with a %%(variable)s", r.pos)
		}
		return nil
	case tEOF:
		return fmt.Errorf("column %d: unexpected end of rule", t.pos)
	default:
		return fmt.Errorf("column %d: unexpected %q", t.pos, t.val)
	}
}

// ruleRefs lists the rule names a (prepared, syntactically valid) check string
// refers to with rule:NAME.
func ruleRefs(check string) []string {
	toks, err := lex(check)
	if err != nil {
		return nil
	}
	var refs []string
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].kind == tStr && toks[i].val == "rule" && toks[i+1].kind == tColon &&
			(toks[i+2].kind == tStr || toks[i+2].kind == tConst) {
			refs = append(refs, toks[i+2].val)
		}
	}
	return refs
}

// findCycle returns a rule that can reach itself through rule: references, or "".
// goslo (like oslo) would recurse without end on such a rule, and in Go a stack
// overflow kills the process, so a cyclic policy is refused when it is loaded.
func findCycle(rules map[string]string) string {
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(rules))
	var visit func(string) string
	visit = func(name string) string {
		switch state[name] {
		case onPath:
			return name
		case done:
			return ""
		}
		state[name] = onPath
		for _, ref := range ruleRefs(rules[name]) {
			if _, ok := rules[ref]; !ok {
				continue // an undefined rule is simply false
			}
			if c := visit(ref); c != "" {
				return c
			}
		}
		state[name] = done
		return ""
	}
	for name := range rules {
		if c := visit(name); c != "" {
			return c
		}
	}
	return ""
}
