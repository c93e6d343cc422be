//! Customer-value expressions (`MonthlyCharges * 12`): parsed once by shunting-yard into
//! reverse Polish notation over encoded columns, evaluated per customer.

use crate::features::{Encoder, InputEncoding};
use crate::ingest::FeatureKind;
use serde::{Deserialize, Serialize};

/// Token of a value expression in reverse Polish notation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Tok {
    /// Encoded column.
    Col(usize),
    /// Constant.
    Num(f64),
    /// Operator `+ - * /`.
    Op(char),
}

/// Binding strength of a binary operator.
fn precedence(c: char) -> u8 {
    if c == '*' || c == '/' {
        2
    } else {
        1
    }
}

/// Compile `expr` (numbers, numeric input names — in backquotes when they hold spaces or
/// operators —, `+ - * /` and parentheses) to RPN.
pub(super) fn compile_expression(expr: &str, enc: &Encoder) -> Result<Vec<Tok>, String> {
    // shunting-yard over numbers, input names and + - * / ( )
    let mut out = Vec::new();
    let mut ops: Vec<char> = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut expect_operand = true;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if "+-*/".contains(c) && !expect_operand {
            while let Some(&top) = ops.last() {
                if top != '(' && precedence(top) >= precedence(c) {
                    out.push(Tok::Op(ops.pop().expect("non-empty")));
                } else {
                    break;
                }
            }
            ops.push(c);
            expect_operand = true;
            i += 1;
        } else if c == '(' && expect_operand {
            ops.push(c);
            i += 1;
        } else if c == ')' && !expect_operand {
            loop {
                match ops.pop() {
                    Some('(') => break,
                    Some(o) => out.push(Tok::Op(o)),
                    None => return Err(format!("unbalanced ')' in '{expr}'")),
                }
            }
            i += 1;
        } else if expect_operand && c == '`' {
            // a backquoted input name may hold spaces and operator characters
            let close = chars[i + 1..]
                .iter()
                .position(|&c| c == '`')
                .ok_or_else(|| format!("unclosed ` in '{expr}'"))?;
            let word: String = chars[i + 1..i + 1 + close].iter().collect();
            i += close + 2;
            out.push(input_column(&word, expr, enc)?);
            expect_operand = false;
        } else if expect_operand {
            let start = i;
            i = operand_end(&chars, start);
            let word: String = chars[start..i].iter().collect();
            out.push(operand(&word, expr, enc)?);
            expect_operand = false;
        } else {
            return Err(format!("unexpected '{c}' in '{expr}'"));
        }
    }
    if expect_operand {
        return Err(format!("'{expr}' ends with an operator or is empty"));
    }
    while let Some(o) = ops.pop() {
        if o == '(' {
            return Err(format!("unbalanced '(' in '{expr}'"));
        }
        out.push(Tok::Op(o));
    }
    Ok(out)
}

/// End of the operand starting at `start`: up to a space, operator or parenthesis; a `-` ends
/// it too unless it follows an exponent `e` (`1e-3`).
fn operand_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    while i < chars.len()
        && !" \t+*/()".contains(chars[i])
        && !(chars[i] == '-' && i > start && !chars[i - 1].eq_ignore_ascii_case(&'e'))
    {
        i += 1;
    }
    i
}

/// An operand: a number, or a numeric input's encoded column.
fn operand(word: &str, expr: &str, enc: &Encoder) -> Result<Tok, String> {
    if let Some(v) = crate::ingest::value::parse_number(word) {
        return Ok(Tok::Num(v));
    }
    input_column(word, expr, enc)
}

/// The encoded column of numeric input `word`.
fn input_column(word: &str, expr: &str, enc: &Encoder) -> Result<Tok, String> {
    let input = enc
        .inputs
        .iter()
        .find(|x| x.name == word)
        .ok_or_else(|| format!("unknown feature '{word}' in '{expr}'"))?;
    match (&input.kind, &input.encoding) {
        (FeatureKind::Numeric, InputEncoding::Numeric { column, .. }) => Ok(Tok::Col(*column)),
        _ => Err(format!("'{word}' in '{expr}' is not numeric")),
    }
}

/// Evaluate RPN on an encoded row; division by zero gives 0.
pub(super) fn eval_rpn(rpn: &[Tok], row: &[f64]) -> f64 {
    let mut st: Vec<f64> = Vec::with_capacity(4);
    for t in rpn {
        match t {
            Tok::Col(c) => st.push(row[*c]),
            Tok::Num(v) => st.push(*v),
            Tok::Op(o) => {
                let b = st.pop().unwrap_or(0.0);
                let a = st.pop().unwrap_or(0.0);
                st.push(match o {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    _ => {
                        if b == 0.0 {
                            0.0
                        } else {
                            a / b
                        }
                    }
                });
            }
        }
    }
    st.pop().unwrap_or(0.0)
}
