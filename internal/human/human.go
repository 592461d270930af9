// Package human renders values for people: the web admin's pages and the
// CLI's tables use it (the JSON API keeps machine values).
package human

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Duration reads like "1 h 5 min", "2 min 30 s", "45 s", "850 ms", "0 s":
// at most two units, the larger ones first.
func Duration(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	if d < time.Second {
		if d == 0 {
			return "0 s"
		}
		if d < time.Millisecond {
			return neg + "< 1 ms"
		}
		return fmt.Sprintf("%s%d ms", neg, d.Milliseconds())
	}
	units := []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "min"}, {time.Second, "s"}}
	var parts []string
	for _, u := range units {
		if d >= u.d {
			parts = append(parts, fmt.Sprintf("%d %s", d/u.d, u.name))
			d %= u.d
		} else if len(parts) > 0 {
			break // "1 h 0 min 5 s" reads as "1 h"
		}
		if len(parts) == 2 {
			break
		}
	}
	return neg + strings.Join(parts, " ")
}

// Time is a timestamp in UTC to the second, without the date when it is
// today (in UTC); "-" for the zero time.
func Time(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t, now = t.UTC(), now.UTC()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04:05") + " UTC"
	}
	return t.Format("2006-01-02 15:04:05") + " UTC"
}

// Ago says how long ago t was ("3 min ago", "in 2 h" for the future); "-"
// for the zero time.
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Truncate(time.Second)
	switch {
	case d < 0:
		return "in " + Duration(-d)
	case d < time.Second:
		return "just now"
	}
	return Duration(d) + " ago"
}

// YesNo is "yes" or "no".
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Percent is "97.5 %", or "-" for a negative value (none to compute from).
func Percent(v float64) string {
	if v < 0 || math.IsNaN(v) {
		return "-"
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f %%", v)
	}
	return fmt.Sprintf("%.1f %%", v)
}

// Days is "1 day", "12 days", "expired 3 days ago".
func Days(n int) string {
	switch {
	case n < 0:
		return "expired " + Count(-n, "day") + " ago"
	}
	return Count(n, "day")
}

// Count is "1 call", "3 calls".
func Count(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
