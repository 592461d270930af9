package numbers

import (
	"math"
	"regexp/syntax"
	"unicode/utf8"
)

// minLen is the length in bytes of the shortest string re matches.
func minLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture:
		return minLen(re.Sub[0])
	case syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return sat(re.Min, minLen(re.Sub[0]))
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n = satAdd(n, minLen(s))
		}
		return n
	case syntax.OpAlternate:
		n := math.MaxInt32
		for _, s := range re.Sub {
			n = min(n, minLen(s))
		}
		return n
	case syntax.OpNoMatch:
		return math.MaxInt32 // matches nothing: never produces a number
	}
	// OpEmptyMatch, anchors, word boundaries, OpStar, OpQuest
	return 0
}

// groupMinLen is the shortest text capture group g can hold in a match of
// re: 0 when the group may take no part in the match (it sits under *, ?,
// {0,n} or in one branch of an alternation).
func groupMinLen(re *syntax.Regexp, g int) int {
	n, _ := groupIn(re, g, false)
	return n
}

func groupIn(re *syntax.Regexp, g int, optional bool) (int, bool) {
	if re.Op == syntax.OpCapture && re.Cap == g {
		if optional {
			return 0, true
		}
		return minLen(re.Sub[0]), true
	}
	opt := optional
	switch re.Op {
	case syntax.OpStar, syntax.OpQuest:
		opt = true
	case syntax.OpRepeat:
		opt = optional || re.Min == 0
	case syntax.OpAlternate:
		opt = optional || len(re.Sub) > 1
	}
	for _, s := range re.Sub {
		if n, ok := groupIn(s, g, opt); ok {
			return n, true
		}
	}
	return 0, false
}

func sat(a, b int) int {
	if a != 0 && b > math.MaxInt32/a {
		return math.MaxInt32
	}
	return a * b
}

func satAdd(a, b int) int { return min(math.MaxInt32, a+b) }
