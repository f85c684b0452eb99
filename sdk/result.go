package sdk

import "fmt"

// Result holds either a value or an error, like the outcome of one input of
// MapResults.
type Result[T any] struct {
	value T
	err   error
}

// Ok returns a successful Result holding v.
func Ok[T any](v T) Result[T] { return Result[T]{value: v} }

// Err returns a failed Result holding err. A nil err is replaced by an error
// saying so, so that a Result made by Err is never Ok.
func Err[T any](err error) Result[T] {
	if err == nil {
		err = fmt.Errorf("sdk.Err called with a nil error")
	}
	return Result[T]{err: err}
}

// IsOk reports whether r holds a value.
func (r Result[T]) IsOk() bool { return r.err == nil }

// Value returns the value and the error.
func (r Result[T]) Value() (T, error) { return r.value, r.err }

// Unwrap returns the value, and panics with the error if r failed.
func (r Result[T]) Unwrap() T {
	if r.err != nil {
		panic(fmt.Sprintf("sdk: Unwrap of a failed Result: %v", r.err))
	}
	return r.value
}

// UnwrapOr returns the value, or def if r failed.
func (r Result[T]) UnwrapOr(def T) T {
	if r.err != nil {
		return def
	}
	return r.value
}

// Err returns the error, or nil if r holds a value.
func (r Result[T]) Err() error { return r.err }

// MapResult applies f to the value of r, passing a failure through.
func MapResult[T, U any](r Result[T], f func(T) U) Result[U] {
	if r.err != nil {
		return Result[U]{err: r.err}
	}
	return Result[U]{value: f(r.value)}
}
