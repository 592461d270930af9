package routing

import (
	"fmt"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// TimeClasses evaluates the named day/time windows of dial_plan.time_classes.
// It is built once per configuration and is safe for concurrent use; a nil
// *TimeClasses knows no class.
type TimeClasses struct {
	byName map[string]timeClass
}

type timeClass struct {
	loc     *time.Location
	windows []window
}

// window is one row: a set of weekdays and a daily range in minutes after
// midnight. end <= start means the range crosses midnight: it starts on a
// listed day and runs into the next day.
type window struct {
	days       [7]bool // indexed by time.Weekday
	start, end int
}

var weekdays = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
}

// NewTimeClasses compiles the time classes. The config package validates
// them already; the errors here only guard a document that skipped it.
func NewTimeClasses(tcs []config.TimeClass) (*TimeClasses, error) {
	out := &TimeClasses{byName: make(map[string]timeClass, len(tcs))}
	for i, tc := range tcs {
		p := fmt.Sprintf("dial_plan.time_classes[%d]", i)
		c := timeClass{loc: time.Local} // no zone: the unit's local time
		if tc.TimeZone != "" {
			if strings.Contains(tc.TimeZone, "..") || strings.HasPrefix(tc.TimeZone, "/") {
				return nil, fmt.Errorf("%s.time_zone: %q is not a time zone", p, tc.TimeZone)
			}
			loc, err := time.LoadLocation(tc.TimeZone)
			if err != nil {
				return nil, fmt.Errorf("%s.time_zone: %w", p, err)
			}
			c.loc = loc
		}
		for j, w := range tc.Windows {
			wp := fmt.Sprintf("%s.windows[%d]", p, j)
			var cw window
			for _, d := range w.Days {
				wd, ok := weekdays[strings.ToLower(strings.TrimSpace(d))]
				if !ok {
					return nil, fmt.Errorf("%s.days: %q is not a day (mon..sun)", wp, d)
				}
				cw.days[wd] = true
			}
			var ok bool
			if cw.start, ok = config.ParseClock(w.Start); !ok {
				return nil, fmt.Errorf("%s.start: %q is not HH:MM", wp, w.Start)
			}
			if cw.end, ok = config.ParseClock(w.End); !ok {
				return nil, fmt.Errorf("%s.end: %q is not HH:MM", wp, w.End)
			}
			c.windows = append(c.windows, cw)
		}
		out.byName[tc.Name] = c
	}
	return out, nil
}

// Has reports whether a class of that name exists.
func (tc *TimeClasses) Has(name string) bool {
	if tc == nil {
		return false
	}
	_, ok := tc.byName[name]
	return ok
}

// Active reports whether t falls inside one of the class's windows, in the
// class's time zone. An unknown class is never active, so a rule naming
// one never matches.
func (tc *TimeClasses) Active(name string, t time.Time) bool {
	if tc == nil {
		return false
	}
	c, ok := tc.byName[name]
	if !ok {
		return false
	}
	lt := t.In(c.loc)
	day := lt.Weekday()
	prev := (day + 6) % 7
	min := lt.Hour()*60 + lt.Minute()
	for _, w := range c.windows {
		if w.start < w.end {
			if w.days[day] && min >= w.start && min < w.end {
				return true
			}
			continue
		}
		// Crossing midnight: the evening part belongs to a listed day,
		// the morning part to the day after a listed day.
		if (w.days[day] && min >= w.start) || (w.days[prev] && min < w.end) {
			return true
		}
	}
	return false
}
