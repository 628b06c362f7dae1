package main

// go get github.com/gowebpki/jcs
import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/gowebpki/jcs"
)

const prefix = "hmac-sha256+jcs:"

// canonical returns the RFC 8785 bytes of a command without its signature:
// what the guardian signs.
func canonical(command []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(command, &fields); err != nil {
		return nil, err
	}
	delete(fields, "signature")
	unsigned, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(unsigned)
}

// verify reports whether the command (JSON) carries a valid hmac-sha256+jcs
// signature for key.
func verify(command, key []byte) bool {
	var fields map[string]json.RawMessage
	var signature string
	if json.Unmarshal(command, &fields) != nil || json.Unmarshal(fields["signature"], &signature) != nil {
		return false
	}
	digest, found := strings.CutPrefix(signature, prefix)
	payload, err := canonical(command)
	if !found || err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	return hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(digest))
}
