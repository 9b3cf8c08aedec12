package config

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/postbackhq/postback/templates"
)

// Condition is a partner's compiled `when:` expression over the macro
// values (github.com/expr-lang/expr). Every macro name is a string variable
// except revenue, a number (0 when absent) so that `revenue > 0` reads as
// it should; params is a map of strings.
type Condition struct {
	src  string
	prog *vm.Program
}

// ConditionError is a condition that does not compile. Line and Column are
// 1-based positions inside the expression.
type ConditionError struct {
	Line, Column int
	Msg          string
}

func (e *ConditionError) Error() string { return e.Msg }

// conditionEnv is a typed sample of the variables, for compile-time checks.
var conditionEnv = func() map[string]any {
	env := make(map[string]any)
	for _, f := range templates.Fields() {
		env[f.String()] = ""
	}
	env["revenue"] = 0.0
	env["params"] = map[string]string{}
	return env
}()

// CompileCondition compiles a `when:` expression; it must yield a boolean.
func CompileCondition(src string) (*Condition, error) {
	prog, err := expr.Compile(src, expr.Env(conditionEnv), expr.AsBool(), expr.MaxNodes(1000))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &ConditionError{Line: fe.Line, Column: fe.Column + 1, Msg: fe.Message}
		}
		return nil, &ConditionError{Line: 1, Column: 1, Msg: err.Error()}
	}
	return &Condition{src: src, prog: prog}, nil
}

// String returns the expression's source.
func (c *Condition) String() string { return c.src }

// Eval runs the condition over env (built by conditionVars).
func (c *Condition) Eval(env map[string]any) (bool, error) {
	out, err := expr.Run(c.prog, env)
	if err != nil {
		return false, fmt.Errorf("when %q: %w", c.src, err)
	}
	b, _ := out.(bool)
	return b, nil
}

// conditionVars builds the variables a condition sees from macro values.
func conditionVars(v *templates.Values) map[string]any {
	env := make(map[string]any, len(conditionEnv))
	for _, f := range templates.Fields() {
		env[f.String()] = v.Get(f)
	}
	rev, _ := strconv.ParseFloat(v.Get(templates.FieldRevenue), 64)
	env["revenue"] = rev
	params := v.Params
	if params == nil {
		params = map[string]string{}
	}
	env["params"] = params
	return env
}
