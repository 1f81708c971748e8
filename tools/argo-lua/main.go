// Command argo-lua runs an Argo CD resource customization script (a health
// check, an action's discovery.lua or an action.lua) over one Kubernetes
// object the way Argo CD does, and prints the result as JSON. quayside's
// tests use it to check deploy/argocd/*.lua with the interpreter Argo CD
// embeds (github.com/yuin/gopher-lua), without running Argo CD.
//
//	argo-lua health    SCRIPT OBJECT   {"status": "...", "message": "..."}
//	argo-lua discovery SCRIPT OBJECT   [{"name": "...", "disabled": false}, ...]
//	argo-lua action    SCRIPT OBJECT   the object the action returns
//
// OBJECT is a YAML or JSON file. The sandbox mirrors Argo CD's for scripts
// without useOpenLibs: only the package, base and table libraries and a
// safe os (time and date) are loaded, so a script that calls string.* or
// io.* fails here as it would in Argo CD; the object is the global `obj`;
// the script's returned table is the result; a run is cut off after one
// second. An invalid health status is reported as Unknown, as Argo CD does.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: argo-lua health|discovery|action SCRIPT OBJECT")
		os.Exit(2)
	}
	out, err := run(os.Args[1], os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintf(os.Stderr, "argo-lua: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}

func run(mode, scriptPath, objectPath string) ([]byte, error) {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return nil, err
	}
	obj, err := readObject(objectPath)
	if err != nil {
		return nil, err
	}
	result, err := execute(string(script), obj)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "health":
		return health(result)
	case "discovery":
		return discovery(result)
	case "action":
		return action(result, obj)
	}
	return nil, fmt.Errorf("unknown mode %q (health, discovery or action)", mode)
}

// readObject decodes YAML or JSON into what a Kubernetes client's
// unstructured object holds: integers as int64, other numbers as float64.
func readObject(path string) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return numbers(obj).(map[string]any), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

// execute runs the script in Argo CD's sandbox with `obj` set, and returns
// its result (the value left on top of the stack) as JSON-shaped Go values.
func execute(script string, obj map[string]any) (any, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		l.Push(l.SetFuncs(l.NewTable(), safeOs))
		return 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	top := l.Get(-1)
	table, ok := top.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", top.Type())
	}
	return fromLua(table, map[*lua.LTable]bool{})
}

// safeOs is the os subset Argo CD gives scripts: the clock, nothing else.
var safeOs = map[string]lua.LGFunction{
	"time": func(l *lua.LState) int {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	},
	"date": osDate,
}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.OsLibName, safeOs))
	return 1
}

// osDate supports what a script needs for a timestamp: "!" for UTC and the
// strftime flags of Argo CD's safe os.date that map to Go layouts.
func osDate(l *lua.LState) int {
	t := time.Now()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
	}
	if len(format) > 0 && format[0] == '!' {
		t, format = t.UTC(), format[1:]
	}
	layouts := map[byte]string{
		'Y': "2006", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05",
		'F': "2006-01-02", 'X': "15:04:05", 'z': "-0700", 'Z': "MST", 'c': "02 Jan 06 15:04 MST",
	}
	var out []byte
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			out = append(out, format[i])
			continue
		}
		i++
		if layout, ok := layouts[format[i]]; ok {
			out = append(out, t.Format(layout)...)
		} else {
			out = append(out, '%', format[i])
		}
	}
	l.Push(lua.LString(out))
	return 1
}

func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

// fromLua converts a result the way Argo CD's JSON encoding of Lua values
// does: a table with keys 1..n is an array, an empty table is an empty
// array, any other table an object.
func fromLua(v lua.LValue, seen map[*lua.LTable]bool) (any, error) {
	switch x := v.(type) {
	case lua.LBool:
		return bool(x), nil
	case lua.LNumber:
		return float64(x), nil
	case lua.LString:
		return string(x), nil
	case *lua.LNilType:
		return nil, nil
	case *lua.LTable:
		if seen[x] {
			return nil, fmt.Errorf("cannot encode a recursively nested table")
		}
		seen[x] = true
		defer delete(seen, x)
		return tableFromLua(x, seen)
	}
	return nil, fmt.Errorf("cannot encode a Lua %s", v.Type())
}

func tableFromLua(t *lua.LTable, seen map[*lua.LTable]bool) (any, error) {
	var arr []any
	obj := map[string]any{}
	sequence := true
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		var item any
		item, err = fromLua(v, seen)
		n, isNumber := k.(lua.LNumber)
		if sequence && isNumber && int(n) == len(arr)+1 {
			arr = append(arr, item)
			return
		}
		if sequence {
			sequence = false
			for i, a := range arr {
				obj[fmt.Sprint(i+1)] = a
			}
		}
		obj[k.String()] = item
	})
	if err != nil {
		return nil, err
	}
	if sequence {
		if arr == nil {
			arr = []any{}
		}
		return arr, nil
	}
	return obj, nil
}

func health(result any) ([]byte, error) {
	table, _ := result.(map[string]any)
	status, _ := table["status"].(string)
	message, _ := table["message"].(string)
	switch status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		status, message = "Unknown", "Lua returned an invalid health status"
	}
	return json.Marshal(map[string]string{"status": status, "message": message})
}

type resourceAction struct {
	Name     string `json:"name"`
	Disabled bool   `json:"disabled"`
}

func discovery(result any) ([]byte, error) {
	actions := []resourceAction{}
	table, _ := result.(map[string]any)
	for name, v := range table {
		a := resourceAction{Name: name}
		if fields, ok := v.(map[string]any); ok {
			a.Disabled, _ = fields["disabled"].(bool)
		}
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return json.Marshal(actions)
}

// action returns the changed object. As in Argo CD, an empty table that
// replaced an object of the input stays that object (Lua cannot tell an
// empty object from an empty array).
func action(result any, old map[string]any) ([]byte, error) {
	changed, ok := result.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the action returned %T, not an object", result)
	}
	return json.Marshal(restoreEmpty(changed, old))
}

func restoreEmpty(changed, old map[string]any) map[string]any {
	for k, was := range old {
		now, ok := changed[k]
		if !ok {
			continue
		}
		switch n := now.(type) {
		case map[string]any:
			if w, ok := was.(map[string]any); ok {
				changed[k] = restoreEmpty(n, w)
			}
		case []any:
			if w, ok := was.(map[string]any); ok && len(n) == 0 {
				changed[k] = w
			} else if w, ok := was.([]any); ok {
				for i := range n {
					if i < len(w) {
						if nm, ok := n[i].(map[string]any); ok {
							if wm, ok := w[i].(map[string]any); ok {
								n[i] = restoreEmpty(nm, wm)
							}
						}
					}
				}
			}
		}
	}
	return changed
}
