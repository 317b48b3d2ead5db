package kpax_test

import (
	"context"
	"errors"
	"testing"

	"h12.me/kpax"
)

// foreignRequest implements kpax.Request outside the generated types; its
// AppendTo would panic on a connection's goroutine if it were sent.
type foreignRequest struct{ kpax.ApiVersionsRequest }

func (*foreignRequest) AppendTo([]byte, int16) []byte { panic("foreign request encoded") }

// TestForeignRequest: a Request type of another package is an error, not
// a panic on the client's goroutine.
func TestForeignRequest(t *testing.T) {
	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, req := range []kpax.Request{&foreignRequest{}, (*foreignRequest)(nil)} {
		if _, err := cl.Request(context.Background(), req); !errors.Is(err, kpax.ErrBadRequest) {
			t.Errorf("Request(%T) = %v, want ErrBadRequest", req, err)
		}
		if _, err := cl.RequestBroker(context.Background(), -1, req); !errors.Is(err, kpax.ErrBadRequest) {
			t.Errorf("RequestBroker(%T) = %v, want ErrBadRequest", req, err)
		}
	}
}
