package routing

import (
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

func TestTimeClasses(t *testing.T) {
	tcs, err := NewTimeClasses([]config.TimeClass{
		{Name: "office", TimeZone: "Europe/Stockholm", Windows: []config.TimeWindow{
			{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "08:00", End: "17:00"},
		}},
		{Name: "night", TimeZone: "UTC", Windows: []config.TimeWindow{
			{Days: []string{"fri"}, Start: "22:00", End: "06:00"},
		}},
		{Name: "weekend", TimeZone: "UTC", Windows: []config.TimeWindow{
			{Days: []string{"sat", "sun"}, Start: "00:00", End: "24:00"},
		}},
		{Name: "local-sat", Windows: []config.TimeWindow{ // no zone: the unit's local time
			{Days: []string{"sat"}, Start: "09:00", End: "10:00"},
		}},
		{Name: "ny-lunch", TimeZone: "America/New_York", Windows: []config.TimeWindow{
			{Days: []string{"mon"}, Start: "12:00", End: "13:00"},
			{Days: []string{"tue"}, Start: "12:30", End: "13:30"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		class string
		at    string
		want  bool
	}{
		// 2026-11-23 is a Monday. Stockholm is UTC+1 in November.
		{"office", "2026-11-23T07:00:00Z", true},  // 08:00 local, first minute
		{"office", "2026-11-23T06:59:00Z", false}, // 07:59 local
		{"office", "2026-11-23T15:59:00Z", true},  // 16:59 local
		{"office", "2026-11-23T16:00:00Z", false}, // 17:00 local: end is exclusive
		{"office", "2026-11-28T09:00:00Z", false}, // Saturday
		// summer time: UTC+2
		{"office", "2026-07-06T06:30:00Z", true},  // Monday 08:30 local
		{"office", "2026-07-06T15:30:00Z", false}, // 17:30 local
		// a Sunday 23:30 in UTC is already Monday 00:30 in Stockholm
		{"office", "2026-11-22T23:30:00Z", false},
		// crossing midnight: Friday 22:00 until Saturday 06:00
		{"night", "2026-11-27T21:59:00Z", false},
		{"night", "2026-11-27T22:00:00Z", true},
		{"night", "2026-11-27T23:59:00Z", true},
		{"night", "2026-11-28T00:00:00Z", true}, // Saturday morning belongs to Friday's window
		{"night", "2026-11-28T05:59:00Z", true},
		{"night", "2026-11-28T06:00:00Z", false},
		{"night", "2026-11-28T22:30:00Z", false}, // Saturday evening is not listed
		{"night", "2026-11-27T03:00:00Z", false}, // Friday morning needs a Thursday window
		{"weekend", "2026-11-28T00:00:00Z", true},
		{"weekend", "2026-11-29T23:59:59Z", true},
		{"weekend", "2026-11-30T00:00:00Z", false},
		// New York is UTC-5 in November
		{"ny-lunch", "2026-11-23T17:30:00Z", true},  // Monday 12:30
		{"ny-lunch", "2026-11-24T17:15:00Z", false}, // Tuesday 12:15
		{"ny-lunch", "2026-11-24T18:15:00Z", true},  // Tuesday 13:15
		{"unknown", "2026-11-24T18:15:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.class+"@"+tt.at, func(t *testing.T) {
			if got := tcs.Active(tt.class, utc(tt.at)); got != tt.want {
				t.Errorf("Active(%q, %s) = %v, want %v", tt.class, tt.at, got, tt.want)
			}
		})
	}
	if !tcs.Active("local-sat", time.Date(2026, 11, 28, 9, 30, 0, 0, time.Local)) ||
		tcs.Active("local-sat", time.Date(2026, 11, 28, 10, 30, 0, 0, time.Local)) {
		t.Error("a class without a time zone is not evaluated in local time")
	}
	if !tcs.Has("night") || tcs.Has("day") {
		t.Error("Has is wrong")
	}
	var none *TimeClasses
	if none.Active("night", time.Now()) || none.Has("night") {
		t.Error("a nil TimeClasses knows a class")
	}
}

func TestTimeClassesErrors(t *testing.T) {
	tests := []struct {
		name string
		tc   config.TimeClass
	}{
		{"zone", config.TimeClass{Name: "x", TimeZone: "Mars/Olympus", Windows: []config.TimeWindow{{Days: []string{"mon"}, Start: "01:00", End: "02:00"}}}},
		{"path zone", config.TimeClass{Name: "x", TimeZone: "../../etc/passwd", Windows: []config.TimeWindow{{Days: []string{"mon"}, Start: "01:00", End: "02:00"}}}},
		{"day", config.TimeClass{Name: "x", Windows: []config.TimeWindow{{Days: []string{"monday"}, Start: "01:00", End: "02:00"}}}},
		{"start", config.TimeClass{Name: "x", Windows: []config.TimeWindow{{Days: []string{"mon"}, Start: "1:00", End: "02:00"}}}},
		{"end", config.TimeClass{Name: "x", Windows: []config.TimeWindow{{Days: []string{"mon"}, Start: "01:00", End: "25:00"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewTimeClasses([]config.TimeClass{tt.tc}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestDialPlanTimeClass checks that the table evaluates a rule's time class:
// a class active all week matches, one listing only other days does not.
func TestDialPlanTimeClass(t *testing.T) {
	today := time.Now().In(time.UTC).Weekday()
	var notToday []string
	for name, d := range weekdays {
		if d != today {
			notToday = append(notToday, name)
		}
	}
	c := config.Default()
	c.Peers = []config.Peer{{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "10.0.0.10:5060", Transport: "udp"}}
	c.DialPlan.TimeClasses = []config.TimeClass{
		{Name: "always", TimeZone: "UTC", Windows: []config.TimeWindow{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, Start: "00:00", End: "24:00"}}},
		{Name: "other-days", TimeZone: "UTC", Windows: []config.TimeWindow{{Days: notToday, Start: "00:00", End: "24:00"}}},
	}
	c.DialPlan.Rules = []config.DialRule{
		{Name: "closed", Head: "1", TimeClass: "other-days", ForwardTo: []config.Forward{{URI: "sip:closed@192.0.2.1"}}},
		{Name: "open", Head: "1", TimeClass: "always", ForwardTo: []config.Forward{{URI: "sip:open@192.0.2.2"}}},
	}
	tab, err := NewTable(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	hops, err := tab.Route(Request{User: "100"}, nil)
	if time.Now().In(time.UTC).Weekday() != today {
		t.Skip("the day changed during the test")
	}
	if err != nil || len(hops) != 1 || hops[0].Rule != "open" {
		t.Fatalf("route: %+v %v", hops, err)
	}
	c.DialPlan.TimeClasses[0].TimeZone = "Mars/Olympus"
	if _, err := NewTable(c, nil); err == nil {
		t.Fatal("a bad time zone builds a table")
	}
}
