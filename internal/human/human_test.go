package human

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0 s"},
		{7555720, "7 ms"},
		{20006824390, "20 s"},
		{2160 * time.Hour, "90 d"},
		{time.Minute, "1 min"},
		{90 * time.Second, "1 min 30 s"},
		{time.Hour + 5*time.Second, "1 h"},
		{26*time.Hour + 3*time.Minute, "1 d 2 h"},
		{-5 * time.Second, "-5 s"},
		{500, "< 1 ms"},
	} {
		if got := Duration(c.in); got != c.want {
			t.Errorf("Duration(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTimeAndAgo(t *testing.T) {
	now := time.Date(2026, 12, 7, 17, 51, 38, 0, time.UTC)
	if got := Time(now.Add(-time.Hour), now); got != "16:51:38 UTC" {
		t.Errorf("today: %q", got)
	}
	if got := Time(now.Add(-24*time.Hour), now); got != "2026-12-06 17:51:38 UTC" {
		t.Errorf("yesterday: %q", got)
	}
	if got := Ago(now.Add(-125*time.Second), now); got != "2 min 5 s ago" {
		t.Errorf("ago: %q", got)
	}
	if Time(time.Time{}, now) != "-" || Ago(time.Time{}, now) != "-" {
		t.Error("zero time must read -")
	}
	if Percent(-1) != "-" || Percent(50) != "50 %" || Percent(97.53) != "97.5 %" {
		t.Error("Percent")
	}
	if Days(-3) != "expired 3 days ago" || Days(1) != "1 day" {
		t.Error("Days")
	}
}
