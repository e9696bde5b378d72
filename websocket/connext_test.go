package websocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// TestConnExtUnusedCoversEveryField: connExt.unused must look at every
// field, or shedExtLocked would drop state still in use. Each field in turn
// (nested structs field by field) is set to a non-zero value.
func TestConnExtUnusedCoversEveryField(t *testing.T) {
	if !new(connExt).unused() {
		t.Fatal("a zero connExt is not unused")
	}
	var walk func(path string, typ reflect.Type, set func(*connExt) reflect.Value)
	walk = func(path string, typ reflect.Type, at func(*connExt) reflect.Value) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := path + f.Name
			field := func(x *connExt) reflect.Value {
				v := at(x).Field(i)
				return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem() // settable
			}
			if f.Type.Kind() == reflect.Struct && f.Type.NumField() > 0 && !strings.HasPrefix(f.Type.PkgPath(), "sync") {
				walk(name+".", f.Type, field)
				continue
			}
			x := new(connExt)
			v := field(x)
			if !setNonZero(v) {
				t.Errorf("connExt.%s: no non-zero value for type %s; extend setNonZero", name, f.Type)
				continue
			}
			if x.unused() {
				t.Errorf("connExt.%s set, but unused() reports true", name)
			}
		}
	}
	walk("", reflect.TypeFor[connExt](), func(x *connExt) reflect.Value { return reflect.ValueOf(x).Elem() })
}

// setNonZero stores a non-zero value of v's type in v.
func setNonZero(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 0, 1))
	case reflect.Chan:
		v.Set(reflect.MakeChan(v.Type(), 0))
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(1)
	case reflect.Interface:
		v.Set(reflect.ValueOf(errors.New("x")))
	case reflect.Struct: // an atomic or a mutex-like struct: set its first word
		*(*uint8)(unsafe.Pointer(v.UnsafeAddr())) = 1
	default:
		return false
	}
	return true
}

// TestInternProtocol: subprotocols get stable one-byte indexes; once the
// table is full, a connection keeps its subprotocol in its connExt.
func TestInternProtocol(t *testing.T) {
	e := newEngine(Config{}, Handler{}, false, false)
	t.Cleanup(e.exec.stop)
	if a, b := e.internProtocol("a"), e.internProtocol("b"); a != 1 || b != 2 || e.internProtocol("a") != 1 {
		t.Fatalf("got indexes a=%d b=%d, want 1 and 2 and a stable again", a, b)
	}
	for i := range protoInExt - 4 { // a, b and these fill all but one index
		e.internProtocol(fmt.Sprint("p", i))
	}
	if got := e.internProtocol("last"); got != protoInExt-1 {
		t.Fatalf("the last free index: got %d, want %d", got, protoInExt-1)
	}
	if got := e.internProtocol("overflow"); got != protoInExt {
		t.Fatalf("a full table: got %d, want protoInExt", got)
	}
	for _, p := range []string{"a", "b", "last", "overflow"} {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { _, _ = c1.Close(), c2.Close() })
		c := newConn(e, handshakeResult{conn: c1, subprotocol: p}, nil)
		if got := c.Subprotocol(); got != p {
			t.Errorf("Subprotocol() = %q, want %q", got, p)
		}
		if inExt := c.x.Load() != nil; inExt != (p == "overflow") {
			t.Errorf("subprotocol %q: connExt allocated = %v, want %v", p, inExt, p == "overflow")
		}
	}
}

// TestSubprotocolBothEnds: both ends report the negotiated subprotocol, in
// both I/O modes, and a reactor connection that wrote its greeting from
// OnOpen (queued while the 101 was held) ends up without a connExt.
func TestSubprotocolBothEnds(t *testing.T) {
	for _, mode := range []Mode{ModeReactor, ModeBlocking} {
		t.Run(fmt.Sprint("mode=", mode), func(t *testing.T) {
			var mu sync.Mutex
			var conns []*Conn
			srv := NewServer(Config{Mode: mode}, Handler{
				OnOpen: func(c *Conn) {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					_ = c.WriteMessage(TextMessage, []byte("hello "+c.Subprotocol())) // fails only if closing
				},
			})
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = srv.Accept(w, r, &AcceptOptions{Subprotocols: []string{"b", "a"}}) // answered on failure
			}))
			t.Cleanup(func() {
				hs.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := srv.Shutdown(ctx, StatusGoingAway, ""); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
			for _, offer := range [][]string{{"a"}, {"a", "b"}, {"c"}} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				cc, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil, &DialOptions{Subprotocols: offer})
				if err != nil {
					cancel()
					t.Fatalf("dial offering %q: %v", offer, err)
				}
				want := map[string]string{"a": "a", "ab": "b", "c": ""}[strings.Join(offer, "")]
				_, data, err := cc.Read(ctx)
				cancel()
				if err != nil {
					t.Fatalf("read hello: %v", err)
				}
				if string(data) != "hello "+want || cc.Subprotocol() != want {
					t.Errorf("offer %q: client got %q and Subprotocol %q, want %q", offer, data, cc.Subprotocol(), want)
				}
				if mode == ModeReactor {
					mu.Lock()
					sc := conns[len(conns)-1]
					mu.Unlock()
					waitUntil(t, "the server connection to drop its connExt", func() bool { return sc.x.Load() == nil })
				}
				_ = cc.CloseNow() // done with it
			}
			mu.Lock()
			defer mu.Unlock()
			for i, c := range conns {
				if want := []string{"a", "b", ""}[i]; c.Subprotocol() != want {
					t.Errorf("server connection %d: Subprotocol %q, want %q", i, c.Subprotocol(), want)
				}
			}
		})
	}
}

// TestSweepShedsExt: replies queued while corked leave a connExt behind
// with an empty queue; the reactor's sweep drops it while the connection
// stays open and usable.
func TestSweepShedsExt(t *testing.T) {
	var mu sync.Mutex
	var sc *Conn
	_, hs := reactorServer(t, Config{Pollers: 1}, Handler{
		OnOpen: func(c *Conn) {
			mu.Lock()
			sc = c
			mu.Unlock()
		},
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			_ = c.WriteMessage(typ, data) // fails only if closing
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = cc.CloseNow() }) // end of test
	mu.Lock()
	c := sc
	mu.Unlock()
	// Pretend a corked batch left its (empty) queue behind.
	c.wmu.Lock()
	c.ext()
	c.wmu.Unlock()
	waitUntil(t, "the sweep to drop the connExt", func() bool { return c.x.Load() == nil })
	for i := range 3 {
		msg := fmt.Sprint("echo ", i)
		if err := cc.WriteMessage(TextMessage, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, data, err := cc.Read(ctx); err != nil || string(data) != msg {
			t.Fatalf("echo %d: got %q, %v", i, data, err)
		}
	}
}
