package controller

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // CronJob time zones without the host's zoneinfo
)

// cronSchedule is a parsed 5-field cron expression (minute hour
// day-of-month month day-of-week), with the @-shorthands of CronJob.
type cronSchedule struct {
	min, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar           bool
	loc                        *time.Location
}

var cronShorthands = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// parseCron parses spec, honouring a CRON_TZ=/TZ= prefix or tz.
func parseCron(spec string, tz *string) (*cronSchedule, error) {
	loc := time.Local
	if tz != nil && *tz != "" {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %s: %w", *tz, err)
		}
		loc = l
	}
	spec = strings.TrimSpace(spec)
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if rest, ok := strings.CutPrefix(spec, p); ok {
			name, expr, _ := strings.Cut(rest, " ")
			l, err := time.LoadLocation(name)
			if err != nil {
				return nil, fmt.Errorf("unknown time zone %s: %w", name, err)
			}
			loc, spec = l, strings.TrimSpace(expr)
		}
	}
	if s, ok := cronShorthands[spec]; ok {
		spec = s
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %s", len(f), spec)
	}
	s := &cronSchedule{loc: loc, domStar: f[2] == "*" || f[2] == "?", dowStar: f[4] == "*" || f[4] == "?"}
	var err error
	for i, dst := range []*uint64{&s.min, &s.hour, &s.dom, &s.month, &s.dow} {
		lo, hi := []int{0, 0, 1, 1, 0}[i], []int{59, 23, 31, 12, 7}[i]
		if *dst, err = cronField(f[i], lo, hi); err != nil {
			return nil, err
		}
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow |= 1
	}
	return s, nil
}

func cronField(field string, lo, hi int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(field, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad step in %q", part)
			}
			step = n
		}
		from, to := lo, hi
		if rng != "*" && rng != "?" {
			a, b, isRange := strings.Cut(rng, "-")
			x, err := strconv.Atoi(a)
			if err != nil {
				return 0, fmt.Errorf("bad value %q", part)
			}
			from, to = x, x
			if isRange {
				if to, err = strconv.Atoi(b); err != nil {
					return 0, fmt.Errorf("bad range %q", part)
				}
			} else if hasStep {
				to = hi
			}
		}
		if from < lo || to > hi || from > to {
			return 0, fmt.Errorf("%q is out of range %d-%d", part, lo, hi)
		}
		for v := from; v <= to; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

// next is the first matching minute strictly after t.
func (s *cronSchedule) next(t time.Time) time.Time {
	t = t.In(s.loc).Truncate(time.Minute).Add(time.Minute)
	for limit := 0; limit < 366*24*60; limit++ {
		dayOK := s.dom&(1<<uint(t.Day())) != 0
		dowOK := s.dow&(1<<uint(t.Weekday())) != 0
		day := dayOK && dowOK
		if !s.domStar && !s.dowStar {
			day = dayOK || dowOK // cron's rule when both are restricted
		}
		if s.month&(1<<uint(t.Month())) != 0 && day && s.hour&(1<<uint(t.Hour())) != 0 && s.min&(1<<uint(t.Minute())) != 0 {
			return t
		}
		t = t.Add(time.Minute)
	}
	return time.Time{}
}
