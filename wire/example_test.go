package wire_test

import (
	"errors"
	"fmt"

	"github.com/wsgate/wsgate/wire"
)

func ExampleDecodeSimple() {
	msg := []byte{0, 0, 0, 110, 0xe6, 0x88, 0x91, 0xe4, 0xbb, 0xac, 0xe9, 0x83, 0xbd, 0xe5, 0xa5, 0xbd}
	action, payload, err := wire.DecodeSimple(msg)
	fmt.Println(action, string(payload), err)

	_, _, err = wire.DecodeSimple([]byte{0, 0})
	reply := wire.AppendSimpleError(nil, 0, err.Error())
	fmt.Printf("% x\n", reply[:4])
	// Output:
	// 110 我们都好 <nil>
	// 80 00 00 00
}

func ExampleAppendFrame() {
	buf := make([]byte, 0, 64) // reuse across calls: no allocation
	buf, err := wire.AppendFrame(buf[:0], &wire.Frame{
		Type: wire.TypeRequest, Action: 110, ID: 7, Payload: []byte("hi"),
	})
	fmt.Printf("% x %v\n", buf, err)
	// Output:
	// 01 00 00 00 6e 00 00 00 07 68 69 <nil>
}

func ExampleDecodeFrame() {
	msg := []byte{4, 0, 0, 0, 120, 0, 0, 0, 0, 0, 0, 0, 5, '{', '}'}
	var f wire.Frame
	if err := wire.DecodeFrame(msg, &f); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Type, f.Action, f.Seq, string(f.Payload))

	err := wire.DecodeFrame([]byte{9}, &f)
	fmt.Println(errors.Is(err, wire.ErrUnknownType))
	// Output:
	// push 120 5 {}
	// true
}

func ExampleAppendJSON() {
	f := wire.Frame{Type: wire.TypeError, ID: 7, Code: wire.CodeUnknownAction,
		Payload: []byte("unknown action 999")}
	text, _ := wire.AppendJSON(nil, &f)
	fmt.Println(string(text))

	var back wire.Frame
	err := wire.DecodeJSON([]byte(`{"type":"request","id":8,"action":110,"text":"我们都好"}`), &back)
	fmt.Println(back.Type, back.ID, back.Action, string(back.Payload), err)
	// Output:
	// {"type":"error","id":7,"code":1,"message":"unknown action 999"}
	// request 8 110 我们都好 <nil>
}

func ExampleCloseCode_Reconnect() {
	for _, c := range []wire.CloseCode{wire.CloseGoingAway, wire.CloseSlowConsumer,
		wire.CloseDraining, wire.CloseUnauthorized} {
		fmt.Printf("%d %s: reconnect=%v backoff=%v\n", c, c, c.Reconnect(), c.Backoff())
	}
	// Output:
	// 1001 going away: reconnect=true backoff=true
	// 4000 slow consumer: reconnect=true backoff=true
	// 4003 server draining: reconnect=true backoff=false
	// 4500 unauthorized: reconnect=false backoff=false
}

func ExampleBackoff_Delay() {
	var b wire.Backoff // protocol defaults: 500ms base, 30s cap
	for attempt := range 8 {
		fmt.Print(b.Delay(attempt, 0), "–", b.Delay(attempt, 1), " ")
	}
	fmt.Println()
	// Output:
	// 250ms–500ms 500ms–1s 1s–2s 2s–4s 4s–8s 8s–16s 15s–30s 15s–30s
}
