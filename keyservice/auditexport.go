package keyservice

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Audit export (docs/operations.md, "Audit records"). The key_audit table
// is read through Store.ScanKeyAudit and turned into AuditEvents, a stable
// JSON schema close to DMTF CADF: who (initiator), what (action, target),
// when (eventTime), how it ended (outcome, reason), which request. Records
// never hold key material, payloads or tokens; the export adds none.

// AuditSecretDecrypt is the action of a secret payload read (Barbican's
// policy name for it).
const AuditSecretDecrypt = "secret:decrypt"

// KeyAuditQuery selects audit records for export: ID > AfterID, written at
// or after Since (zero: any time), of ProjectID (empty: every project),
// oldest first, at most Limit (0: 1000).
type KeyAuditQuery struct {
	ProjectID string
	Since     time.Time
	AfterID   int64
	Limit     int
}

// AuditEvent is one exported audit record. Field names and meanings are a
// documented contract: add fields, never rename or repurpose them.
type AuditEvent struct {
	// ID increases with the order records were written (per database).
	ID        int64  `json:"id"`
	TypeURI   string `json:"typeURI"`
	EventType string `json:"eventType"`
	// EventTime is RFC 3339 with microseconds, UTC.
	EventTime string `json:"eventTime"`
	// Action is "<target type>:<verb>": project_key:create, :rotate,
	// :destroy, :payload, secret:decrypt.
	Action string `json:"action"`
	// Outcome is CADF's "success" or "failure".
	Outcome   string        `json:"outcome"`
	Initiator AuditResource `json:"initiator"`
	Target    AuditResource `json:"target"`
	// Observer is the service that recorded the event.
	Observer  AuditResource `json:"observer"`
	RequestID string        `json:"request_id"`
	// Reason is empty on success, else denied, not_found, gone, conflict
	// or error.
	Reason string `json:"reason,omitempty"`
	// Detail is a short note ("forced", "previous <key id>", "first key").
	Detail string `json:"detail,omitempty"`
	// EventID is the event's own UUID, assigned when it happened (records
	// written before schema version 16 have none): unlike ID it is the
	// same in every export and every database copy, for deduplication.
	EventID string `json:"event_id,omitempty"`
}

// AuditResource is an initiator, target or observer.
type AuditResource struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id,omitempty"`
	// Type: "user" or "service" (initiator), "project_key" or "secret"
	// (target), "service/security/keymanager" (observer).
	Type string `json:"type"`
	// Roles of the initiator, as the token listed them.
	Roles string `json:"roles,omitempty"`
}

// AuditEventOf converts a stored record.
func AuditEventOf(r KeyAuditRecord) AuditEvent {
	targetType, action := "project_key", "project_key:"+r.Action
	if r.Action == AuditSecretDecrypt {
		targetType, action = "secret", r.Action
	}
	initiatorType := "user"
	if r.Service {
		initiatorType = "service"
	}
	ev := AuditEvent{
		ID: r.ID, TypeURI: "http://schemas.dmtf.org/cloud/audit/1.0/event", EventType: "activity",
		EventTime: r.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		Action:    action, Outcome: "success",
		Initiator: AuditResource{ID: r.UserID, ProjectID: r.UserProjectID, Type: initiatorType, Roles: r.Roles},
		Target:    AuditResource{ID: r.KeyID, ProjectID: r.ProjectID, Type: targetType},
		Observer:  AuditResource{ID: "arca-api", Type: "service/security/keymanager"},
		RequestID: r.RequestID, Detail: r.Detail, EventID: r.EventID,
	}
	if r.Outcome != OutcomeSuccess {
		ev.Outcome, ev.Reason = "failure", r.Outcome
	}
	return ev
}

// DecryptSecret opens a secret's payload for caller and audits the read
// (secret:decrypt), whatever its outcome. Like ProjectKeyMaterial it fails
// closed: a read that cannot be audited is refused.
func (s *Service) DecryptSecret(ctx context.Context, caller Caller, sec *Secret) ([]byte, error) {
	plain, err := s.SecretPayload(ctx, sec)
	if aerr := s.audit(ctx, caller, AuditSecretDecrypt, sec.ProjectID, sec.ID, err, ""); aerr != nil && err == nil {
		clear(plain)
		return nil, aerr
	}
	return plain, err
}

// ExportKeyAudit returns the records selected by q, oldest first, after
// writing those still queued in this process.
func (s *Service) ExportKeyAudit(ctx context.Context, q KeyAuditQuery) ([]KeyAuditRecord, error) {
	if err := s.FlushAudit(ctx); err != nil {
		return nil, err
	}
	recs, err := s.store.ScanKeyAudit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("reading audit records: %w", err)
	}
	return recs, nil
}

// String is a one-line summary of an event (for logs and tables).
func (e AuditEvent) String() string {
	return strconv.FormatInt(e.ID, 10) + " " + e.EventTime + " " + e.Action + " " + e.Outcome
}
