//! test-plugin-other-world: a component exporting `example:greeter/greet`, not the tool contract.

wit_bindgen::generate!({
    path: "wit",
    world: "greeter",
});

struct Greeter;

impl exports::example::greeter::greet::Guest for Greeter {
    fn hello(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Greeter);
