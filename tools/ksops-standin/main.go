// Command ksops is a TEST STAND-IN for KSOPS (github.com/viaduct-ai/kustomize-sops),
// which the Go module proxy does not serve, so quayside's tests cannot build it.
// Never install it in a real Argo CD: use KSOPS itself (docs/side-repo.md).
//
// It speaks the part of KSOPS's KRM exec-function contract that quayside's
// rendered generator (templates/secret-generator.yaml) uses: kustomize,
// run with --enable-alpha-plugins --enable-exec, finds `ksops` on $PATH and
// writes a ResourceList to its stdin whose items are the generator manifests
// (kind ksops, with a `files` list); each listed file is decrypted with the
// real `sops` binary (its age identity from SOPS_AGE_KEY_FILE, as KSOPS's
// embedded sops library reads it), and the ResourceList goes back on stdout
// with the decrypted objects as its items. Paths are relative to the working
// directory kustomize gives the function, as for KSOPS. A failure to decrypt
// fails the build, naming the file, as KSOPS does.
//
// Unlike KSOPS it supports neither `secretFrom` nor the legacy plugin form.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"

	"sigs.k8s.io/yaml"
)

type resourceList struct {
	APIVersion     string           `json:"apiVersion"`
	Kind           string           `json:"kind"`
	Items          []map[string]any `json:"items"`
	FunctionConfig map[string]any   `json:"functionConfig,omitempty"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "ksops (test stand-in): unable to generate manifests: %v\n", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	raw, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	var rl resourceList
	if err := yaml.Unmarshal(raw, &rl); err != nil {
		return fmt.Errorf("reading the ResourceList: %w", err)
	}
	if rl.Kind != "ResourceList" {
		return fmt.Errorf("stdin is a %q, not a ResourceList", rl.Kind)
	}
	var generated []map[string]any
	for _, item := range rl.Items {
		files, err := filesOf(item)
		if err != nil {
			return err
		}
		for _, f := range files {
			obj, err := decrypt(f)
			if err != nil {
				return err
			}
			generated = append(generated, obj)
		}
	}
	rl.Items = generated
	if rl.Items == nil {
		rl.Items = []map[string]any{}
	}
	y, err := yaml.Marshal(rl)
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}

func filesOf(item map[string]any) ([]string, error) {
	list, ok := item["files"].([]any)
	if !ok {
		return nil, fmt.Errorf("missing the required 'files' key in the ksops manifest %v", item["metadata"])
	}
	var files []string
	for _, f := range list {
		s, ok := f.(string)
		if !ok {
			return nil, fmt.Errorf("a 'files' entry is not a string: %v", f)
		}
		files = append(files, s)
	}
	return files, nil
}

func decrypt(file string) (map[string]any, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("sops", "--decrypt", "--input-type", "yaml", "--output-type", "yaml", file)
	cmd.Stderr = &stderr
	clear, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("error decrypting file %q from manifest.Files: %v: %s", file, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var obj map[string]any
	if err := yaml.Unmarshal(clear, &obj); err != nil {
		return nil, fmt.Errorf("decrypted %q is not a YAML object: %w", file, err)
	}
	return obj, nil
}
