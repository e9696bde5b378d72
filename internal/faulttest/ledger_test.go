package faulttest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/client"
)

// userLog is what the push API answered for one user's pushes, in the order
// they were sent: one at a time, each after the previous one's answer, so
// that the order of the accepted ones is the order the gateway numbered
// them in. n numbers every attempt; the payload "<user>-<n>" names it.
type userLog struct {
	name string

	mu       sync.Mutex
	accepted []accept         // 200 answers, in order
	unsure   map[int64]string // no 200: the push may or may not have gone in
	slowest  time.Duration    // the longest API call
}

// accept is one push the API accepted.
type accept struct {
	n   int64
	seq uint64
	at  time.Time
}

func newUserLog(name string) *userLog {
	return &userLog{name: name, unsure: make(map[int64]string)}
}

func (u *userLog) payload(n int64) string { return u.name + "-" + strconv.FormatInt(n, 10) }

func (u *userLog) ok(n int64, seq uint64) {
	u.mu.Lock()
	u.accepted = append(u.accepted, accept{n: n, seq: seq, at: time.Now()})
	u.mu.Unlock()
}

func (u *userLog) failed(n int64, why string) {
	u.mu.Lock()
	u.unsure[n] = why
	u.mu.Unlock()
}

func (u *userLog) took(d time.Duration) {
	u.mu.Lock()
	u.slowest = max(u.slowest, d)
	u.mu.Unlock()
}

// count is how many pushes the API accepted.
func (u *userLog) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.accepted)
}

// last is the n of the last accepted push (0: none).
func (u *userLog) last() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.accepted) == 0 {
		return 0
	}
	return u.accepted[len(u.accepted)-1].n
}

// event is one callback of a device: a push (n > 0, or foreign) or a
// pushes-lost notice.
type event struct {
	n       int64 // the push's number; 0 for a notice or a foreign payload
	seq     uint64
	lost    bool
	reason  string
	foreign string // a payload that is not "<user>-<n>", quoted
	at      time.Time
}

// device is one SDK client of a user, recording every callback in order.
type device struct {
	user *userLog
	name string // user/device index, for messages
	via  string // the URL it dials

	c *client.Client

	mu         sync.Mutex
	events     []event
	states     []string
	maxN       int64
	reconnects int // connections after the first
}

func (d *device) options(token string) client.Options {
	return client.Options{
		Token:        token,
		OnPush:       d.onPush,
		OnPushesLost: d.onLost,
		OnStateChange: func(s client.State, err error) {
			d.mu.Lock()
			if s == client.StateConnected && len(d.states) > 0 {
				d.reconnects++
			}
			d.states = append(d.states, fmt.Sprintf("%s %s (%v)", time.Now().UTC().Format("15:04:05.000"), s, err))
			d.mu.Unlock()
		},
		// Short waits keep the test short; the schedule's shape is the
		// protocol's.
		Backoff:      wireBackoff,
		CloseTimeout: time.Second,
	}
}

func (d *device) onPush(p client.Push) {
	ev := event{seq: p.Seq, at: time.Now()}
	s := string(p.Payload)
	num, ok := strings.CutPrefix(s, d.user.name+"-")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 {
		ev.foreign = strconv.Quote(s) // never empty, even for an empty payload
	} else {
		ev.n = n
	}
	d.mu.Lock()
	d.events = append(d.events, ev)
	d.maxN = max(d.maxN, ev.n)
	d.mu.Unlock()
}

func (d *device) onLost(reason string) {
	d.mu.Lock()
	d.events = append(d.events, event{lost: true, reason: reason, at: time.Now()})
	d.mu.Unlock()
}

func (d *device) caughtUp(n int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.maxN >= n
}

// counts is one row of the table: a scenario's deliveries over every device.
type counts struct {
	users, devices int
	accepted       int // pushes the API accepted (each is due at every device of its user)
	due            int // accepted × devices of the user
	received       int // due deliveries that arrived (once)
	lostSignalled  int // due, never arrived, with a notice in the gap
	lostSilent     int // due, never arrived, no notice in the gap
	duplicates     int // a push that arrived again
	reorders       int // an accepted push that arrived after a later accepted one
	notices        int // OnPushesLost calls
	unsure         int // pushes without a 200 answer (refused, timed out)
	unsureArrived  int // deliveries of those that arrived anyway
	foreign        int // payloads that are not this user's
	restarts       int // times the API's seq for a user did not go up: new epochs
	reconnects     int // device connections after the first
	slowest        time.Duration
	reasons        map[string]int // notices by reason, digits folded to #
	failures       map[string]int // API calls without a 200, by error, digits folded
}

func (c *counts) add(o counts) {
	c.users += o.users
	c.devices += o.devices
	c.accepted += o.accepted
	c.due += o.due
	c.received += o.received
	c.lostSignalled += o.lostSignalled
	c.lostSilent += o.lostSilent
	c.duplicates += o.duplicates
	c.reorders += o.reorders
	c.notices += o.notices
	c.unsure += o.unsure
	c.unsureArrived += o.unsureArrived
	c.foreign += o.foreign
	c.restarts += o.restarts
	c.reconnects += o.reconnects
	c.slowest = max(c.slowest, o.slowest)
	c.reasons = addCounts(c.reasons, o.reasons)
	c.failures = addCounts(c.failures, o.failures)
}

func addCounts(to, from map[string]int) map[string]int {
	for k, n := range from {
		if to == nil {
			to = make(map[string]int)
		}
		to[k] += n
	}
	return to
}

// foldDigits turns every run of digits into #, so that notices group by kind.
func foldDigits(s string) string {
	var b strings.Builder
	digits := false
	for _, r := range s {
		isDigit := r >= '0' && r <= '9'
		if isDigit && !digits {
			b.WriteByte('#')
		}
		if !isDigit {
			b.WriteRune(r)
		}
		digits = isDigit
	}
	return b.String()
}

// userCounts judges the devices of one user against the user's log and
// describes the first problems found.
func userCounts(u *userLog, devs []*device) (counts, []string) {
	u.mu.Lock()
	accepted := slices.Clone(u.accepted)
	unsure := make(map[int64]string, len(u.unsure))
	for n, why := range u.unsure {
		unsure[n] = why
	}
	slowest := u.slowest
	u.mu.Unlock()
	c := counts{users: 1, devices: len(devs), accepted: len(accepted), unsure: len(unsure), slowest: slowest,
		failures: make(map[string]int)}
	for _, why := range unsure {
		c.failures[foldDigits(why)]++
	}
	for i := 1; i < len(accepted); i++ {
		if accepted[i].seq <= accepted[i-1].seq {
			c.restarts++
		}
	}
	isAccepted := make(map[int64]int, len(accepted))
	for i, a := range accepted {
		isAccepted[a.n] = i
	}
	var problems []string
	for _, d := range devs {
		dc, p := deviceCounts(d, accepted, isAccepted, unsure)
		c.add(dc)
		problems = append(problems, p...)
	}
	return c, problems
}

// deviceCounts judges one device. A missing push is signalled when the
// device was told of lost pushes between the pushes it did receive on
// either side of the gap.
func deviceCounts(d *device, accepted []accept, isAccepted map[int64]int, unsure map[int64]string) (counts, []string) {
	d.mu.Lock()
	events := slices.Clone(d.events)
	states := slices.Clone(d.states)
	reconnects := d.reconnects
	d.mu.Unlock()
	c := counts{reconnects: reconnects}
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 3 {
			problems = append(problems, d.name+": "+fmt.Sprintf(format, args...))
		}
	}
	at := make(map[int64]int) // n → index of its first arrival
	var maxAccepted int64
	for i, ev := range events {
		_, seen := at[ev.n]
		switch {
		case ev.lost:
			c.notices++
			if c.reasons == nil {
				c.reasons = make(map[string]int)
			}
			c.reasons[foldDigits(ev.reason)]++
		case ev.foreign != "":
			c.foreign++
			problem("foreign payload %s (seq %d)", ev.foreign, ev.seq)
		case seen:
			c.duplicates++
			problem("push %d (seq %d) arrived twice\n%s", ev.n, ev.seq, around(events, i))
		default:
			at[ev.n] = i
			if _, ok := isAccepted[ev.n]; ok {
				if ev.n < maxAccepted {
					c.reorders++
					problem("push %d (seq %d) arrived after push %d\n%s", ev.n, ev.seq, maxAccepted, around(events, i))
				}
				maxAccepted = max(maxAccepted, ev.n)
			} else if _, ok := unsure[ev.n]; ok {
				c.unsureArrived++
			}
		}
	}
	arrived := make([]int64, 0, len(at)) // sorted numbers of what arrived
	for n := range at {
		arrived = append(arrived, n)
	}
	slices.Sort(arrived)
	for _, a := range accepted {
		c.due++
		if _, ok := at[a.n]; ok {
			c.received++
			continue
		}
		if signalled(events, at, arrived, a.n) {
			c.lostSignalled++
			continue
		}
		c.lostSilent++
		problem("push %d (seq %d, accepted %s) never arrived and no notice in its gap\n%s\nstates: %s",
			a.n, a.seq, a.at.UTC().Format("15:04:05.000"), aroundN(events, at, arrived, a.n), strings.Join(states, "; "))
	}
	return c, problems
}

// signalled reports whether a notice arrived after the last push received
// before n and before the first push received after n.
func signalled(events []event, at map[int64]int, arrived []int64, n int64) bool {
	from, to := gap(at, arrived, n, len(events))
	for i := from + 1; i < to; i++ {
		if events[i].lost {
			return true
		}
	}
	return false
}

// gap is the event indexes of the arrivals on either side of the missing n
// (-1 and len(events) where there is none).
func gap(at map[int64]int, arrived []int64, n int64, end int) (int, int) {
	i, _ := slices.BinarySearch(arrived, n)
	from, to := -1, end
	if i > 0 {
		from = at[arrived[i-1]]
	}
	if i < len(arrived) {
		to = at[arrived[i]]
	}
	return from, to
}

func aroundN(events []event, at map[int64]int, arrived []int64, n int64) string {
	from, _ := gap(at, arrived, n, len(events))
	return around(events, max(from, 0))
}

// around describes the events near index i.
func around(events []event, i int) string {
	var b strings.Builder
	for j := max(0, i-4); j < min(len(events), i+5); j++ {
		ev := events[j]
		mark := "  "
		if j == i {
			mark = "> "
		}
		ts := ev.at.UTC().Format("15:04:05.000")
		switch {
		case ev.lost:
			fmt.Fprintf(&b, "    %s%s pushes lost: %s\n", mark, ts, ev.reason)
		case ev.foreign != "":
			fmt.Fprintf(&b, "    %s%s foreign %s seq %d\n", mark, ts, ev.foreign, ev.seq)
		default:
			fmt.Fprintf(&b, "    %s%s push %d seq %d\n", mark, ts, ev.n, ev.seq)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
