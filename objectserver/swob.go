package objectserver

import (
	"net/http"
	"strconv"
)

// Swift's object server answers through swob, whose responses the proxy
// passes on: a status without a body of its own gets swob's default body
// (an HTML title and explanation for the statuses that have one, nothing
// for 201, 204 and the like) typed text/html; charset=UTF-8, and an answer
// to HEAD carries no body and a zero length.

// swobHTML is the Content-Type of swob's default bodies.
const swobHTML = "text/html; charset=UTF-8"

// swobReasons are swob's RESPONSE_REASONS: the title and explanation of
// the default body of each status (no explanation: an empty body).
var swobReasons = map[int][2]string{
	http.StatusAccepted:                     {"Accepted", "The request is accepted for processing."},
	http.StatusBadRequest:                   {"Bad Request", "The server could not comply with the request since it is either malformed or otherwise incorrect."},
	http.StatusUnauthorized:                 {"Unauthorized", "This server could not verify that you are authorized to access the document you requested."},
	http.StatusForbidden:                    {"Forbidden", "Access was denied to this resource."},
	http.StatusNotFound:                     {"Not Found", "The resource could not be found."},
	http.StatusMethodNotAllowed:             {"Method Not Allowed", "The method is not allowed for this resource."},
	http.StatusRequestTimeout:               {"Request Timeout", "The server has waited too long for the request to be sent by the client."},
	http.StatusConflict:                     {"Conflict", "There was a conflict when trying to complete your request."},
	http.StatusGone:                         {"Gone", "This resource is no longer available."},
	http.StatusLengthRequired:               {"Length Required", "Content-Length header required."},
	http.StatusPreconditionFailed:           {"Precondition Failed", "A precondition for this request was not met."},
	http.StatusRequestEntityTooLarge:        {"Request Entity Too Large", "The body of your request was too large for this server."},
	http.StatusRequestedRangeNotSatisfiable: {"Requested Range Not Satisfiable", "The Range requested is not available."},
	http.StatusUnprocessableEntity:          {"Unprocessable Entity", "Unable to process the contained instructions"},
	499:                                     {"Client Disconnect", "The client was disconnected during request."},
	http.StatusInternalServerError:          {"Internal Error", "The server has either erred or is incapable of performing the requested operation."},
	http.StatusNotImplemented:               {"Not Implemented", "The requested method is not implemented by this server."},
	http.StatusServiceUnavailable:           {"Service Unavailable", "The server is currently unavailable. Please try again at a later time."},
	http.StatusGatewayTimeout:               {"Gateway Timeout", "A timeout has occurred speaking to a backend server."},
	http.StatusInsufficientStorage:          {"Insufficient Storage", "There was not enough space to save the resource. Drive: %(drive)s"},
}

// swobBody is swob's default body for code ("" when it has none).
func swobBody(code int) string {
	r, ok := swobReasons[code]
	if !ok || r[1] == "" {
		return ""
	}
	return "<html><h1>" + r[0] + "</h1><p>" + r[1] + "</p></html>"
}

// insufficientStorage is swob's 507 body for a device.
func insufficientStorage(device string) string {
	return "<html><h1>Insufficient Storage</h1><p>There was not enough space to save the resource. Drive: " + device + "</p></html>"
}

// swobTyped are the messages Swift's object server sends without naming
// a type, which swob then types as its HTML default.
var swobTyped = map[string]bool{
	"Invalid UTF8 or contains NULL":                                 true,
	"Invalid reserved-namespace account":                            true,
	"Invalid reserved-namespace container":                          true,
	"Invalid reserved-namespace object":                             true,
	"Invalid user-namespace object in reserved-namespace container": true,
	"Invalid reserved-namespace object in user-namespace container": true,
	"X-If-Delete-At and X-Delete-At do not match":                   true,
	"Bad X-If-Delete-At header value":                               true,
	// a multiphase PUT's MIME documents (obj/server.py)
	"no MIME boundary":                  true,
	"couldn't find footer MIME doc":     true,
	"no Content-MD5 in footer":          true,
	"footer MD5 mismatch":               true,
	"invalid JSON for footer doc":       true,
	"couldn't find PUT commit MIME doc": true,
}

// textError answers code with msg as a text/plain body or, when msg is
// empty, swob's default body; HEAD gets the headers and a zero length.
// An HTML body (507's) and the messages of swobTyped are typed as swob
// types them.
func textError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h := w.Header()
	switch {
	case msg == "":
		msg = swobBody(code)
		h.Set("Content-Type", swobHTML)
	case swobTyped[msg] || (len(msg) > 6 && msg[:6] == "<html>"):
		h.Set("Content-Type", swobHTML)
	default:
		h.Set("Content-Type", "text/plain")
	}
	if r != nil && r.Method == http.MethodHead {
		msg = ""
	}
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	if msg != "" {
		_, _ = w.Write([]byte(msg))
	}
}

// emptyAnswer answers code with no body at all, as swob answers a failed
// condition (412 to If-Match: * on a missing object).
func emptyAnswer(w http.ResponseWriter, code int) {
	h := w.Header()
	h.Set("Content-Type", swobHTML)
	h.Set("Content-Length", "0")
	w.WriteHeader(code)
}
