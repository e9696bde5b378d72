package wsgate

import "testing"

func TestMayAccess(t *testing.T) {
	tests := []struct {
		topics []string
		topic  string
		want   bool
	}{
		{nil, "anything", true},
		{[]string{}, "news", false},
		{[]string{"news"}, "news", true},
		{[]string{"news"}, "news.sport", false},
		{[]string{"news.*"}, "news.sport", true},
		{[]string{"news.*"}, "news.", true},
		{[]string{"news.*"}, "news", false},
		{[]string{"*"}, "x", true},
		{[]string{"a", "b*"}, "bee", true},
	}
	for _, tt := range tests {
		id := connIdentity{Topics: tt.topics}
		if got := id.mayAccess(tt.topic); got != tt.want {
			t.Errorf("Topics %q, topic %q: got %v, want %v", tt.topics, tt.topic, got, tt.want)
		}
	}
}

func TestIDsUnique(t *testing.T) {
	g1, err := newIDGenerator()
	if err != nil {
		t.Fatal(err)
	}
	g2, err := newIDGenerator()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for range 1000 {
		for _, id := range []string{g1.newID(), g2.newID()} {
			if seen[id] {
				t.Fatalf("id %q generated twice", id)
			}
			seen[id] = true
			if len(id) > 16 {
				t.Fatalf("id %q: got %d bytes, want at most 16", id, len(id))
			}
		}
	}
}
