//! The README shows the lifecycle diagram generated from the transition table, and the rule
//! table of the catalogue; these tests fail when either copy is stale.

use journey_spec::model::{RuleId, mermaid};

const README: &str = include_str!("../README.md");

fn fenced_block<'a>(text: &'a str, lang: &str) -> Option<&'a str> {
    let start = text.find(&format!("```{lang}\n"))? + lang.len() + 4;
    let len = text[start..].find("```")?;
    Some(&text[start..start + len])
}

#[test]
fn readme_diagram_is_generated_from_the_table() {
    let shown = fenced_block(README, "mermaid").expect("README has a mermaid block");
    assert_eq!(shown, mermaid(), "README diagram is stale: paste `cargo run --example print_diagram`");
}

#[test]
fn readme_lists_every_rule_with_its_name() {
    for rule in RuleId::ALL {
        let row = format!("| {} | {} |", rule.as_str(), rule.info().name);
        assert!(README.contains(&row), "README lacks the row {row:?}");
    }
}
