// Command verifier checks Rollback Guardian commands:
//
//	verifier --vectors FILE   check every test vector (canonical bytes, accept or reject)
//	verifier < commands.jsonl verify one command per line with GUARDIAN_SIGNING_KEY
//
// It exits 0 when all is as expected, 1 otherwise, 2 on a usage error.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

type vector struct {
	Name      string          `json:"name"`
	Expect    string          `json:"expect"`
	Key       string          `json:"key"`
	Canonical string          `json:"canonical"`
	Command   json.RawMessage `json:"command"`
}

func checkVectors(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	failed := 0
	for _, v := range file.Vectors {
		got, err := canonical(v.Command)
		accepted := verify(v.Command, []byte(v.Key))
		problem := ""
		switch {
		case err != nil:
			problem = "cannot canonicalize: " + err.Error()
		case string(got) != v.Canonical:
			problem = fmt.Sprintf("canonical form differs\n  got  %s\n  want %s", got, v.Canonical)
		case accepted != (v.Expect == "accept"):
			problem = fmt.Sprintf("expected %s, got accepted=%t", v.Expect, accepted)
		}
		if problem != "" {
			fmt.Printf("FAIL %s: %s\n", v.Name, problem)
			failed++
		} else {
			fmt.Printf("ok   %s\n", v.Name)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func checkStdin() int {
	key := os.Getenv("GUARDIAN_SIGNING_KEY")
	if key == "" {
		fmt.Fprintln(os.Stderr, "GUARDIAN_SIGNING_KEY is not set")
		return 2
	}
	bad := 0
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for number := 1; scanner.Scan(); number++ {
		line := scanner.Bytes()
		if len(line) == 0 {
			continue
		}
		var id struct {
			CommandID *string `json:"command_id"`
		}
		name := fmt.Sprintf("line %d", number)
		if json.Unmarshal(line, &id) == nil && id.CommandID != nil {
			name = *id.CommandID
		}
		if verify(line, []byte(key)) {
			fmt.Printf("ok  %s\n", name)
		} else {
			fmt.Printf("BAD %s\n", name)
			bad++
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if bad > 0 {
		return 1
	}
	return 0
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--vectors" {
		os.Exit(checkVectors(os.Args[2]))
	}
	os.Exit(checkStdin())
}
