// Package errdefs classifies errors (not found, conflict, invalid parameter, ...)
// so that the API layer can map them to HTTP status codes in one place.
//
// A class is a tiny interface; wrap an error with one of the constructors and
// test it with the Is* helpers, which look through wrapped errors.
package errdefs

import (
	"errors"
	"fmt"
)

type notFound interface{ NotFound() }
type invalidParameter interface{ InvalidParameter() }
type conflict interface{ Conflict() }
type unauthorized interface{ Unauthorized() }
type forbidden interface{ Forbidden() }
type unavailable interface{ Unavailable() }
type notModified interface{ NotModified() }
type notImplemented interface{ NotImplemented() }

type wrapped struct{ err error }

func (w wrapped) Error() string { return w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

type errNotFound struct{ wrapped }

func (errNotFound) NotFound() {}

type errInvalidParameter struct{ wrapped }

func (errInvalidParameter) InvalidParameter() {}

type errConflict struct{ wrapped }

func (errConflict) Conflict() {}

type errUnauthorized struct{ wrapped }

func (errUnauthorized) Unauthorized() {}

type errForbidden struct{ wrapped }

func (errForbidden) Forbidden() {}

type errUnavailable struct{ wrapped }

func (errUnavailable) Unavailable() {}

type errNotModified struct{ wrapped }

func (errNotModified) NotModified() {}

type errNotImplemented struct{ wrapped }

func (errNotImplemented) NotImplemented() {}

// NotFound marks err as "the object does not exist" (HTTP 404).
func NotFound(err error) error {
	return keep(err, func(e error) error { return errNotFound{wrapped{e}} })
}

// InvalidParameter marks err as a client mistake (HTTP 400).
func InvalidParameter(err error) error {
	return keep(err, func(e error) error { return errInvalidParameter{wrapped{e}} })
}

// Conflict marks err as a conflict with the current state (HTTP 409).
func Conflict(err error) error {
	return keep(err, func(e error) error { return errConflict{wrapped{e}} })
}

// Unauthorized marks err as missing credentials (HTTP 401).
func Unauthorized(err error) error {
	return keep(err, func(e error) error { return errUnauthorized{wrapped{e}} })
}

// Forbidden marks err as not allowed (HTTP 403).
func Forbidden(err error) error {
	return keep(err, func(e error) error { return errForbidden{wrapped{e}} })
}

// Unavailable marks err as a temporary unavailability (HTTP 503).
func Unavailable(err error) error {
	return keep(err, func(e error) error { return errUnavailable{wrapped{e}} })
}

// NotModified marks a request that changed nothing (HTTP 304), such as
// starting a running container.
func NotModified(err error) error {
	return keep(err, func(e error) error { return errNotModified{wrapped{e}} })
}

// NotImplemented marks a feature berth does not have (HTTP 501).
func NotImplemented(err error) error {
	return keep(err, func(e error) error { return errNotImplemented{wrapped{e}} })
}

func keep(err error, wrap func(error) error) error {
	if err == nil {
		return nil
	}
	return wrap(err)
}

// Helpers that build classified errors from a format string.

func NotFoundf(format string, a ...any) error { return NotFound(fmt.Errorf(format, a...)) }
func InvalidParameterf(format string, a ...any) error {
	return InvalidParameter(fmt.Errorf(format, a...))
}
func Conflictf(format string, a ...any) error { return Conflict(fmt.Errorf(format, a...)) }

func IsNotFound(err error) bool         { var e notFound; return errors.As(err, &e) }
func IsInvalidParameter(err error) bool { var e invalidParameter; return errors.As(err, &e) }
func IsConflict(err error) bool         { var e conflict; return errors.As(err, &e) }
func IsUnauthorized(err error) bool     { var e unauthorized; return errors.As(err, &e) }
func IsForbidden(err error) bool        { var e forbidden; return errors.As(err, &e) }
func IsUnavailable(err error) bool      { var e unavailable; return errors.As(err, &e) }
func IsNotModified(err error) bool      { var e notModified; return errors.As(err, &e) }
func IsNotImplemented(err error) bool   { var e notImplemented; return errors.As(err, &e) }
