//! `greeting!()` expands to the text of greeting.txt, read when the macro runs.
use proc_macro::{Literal, TokenStream, TokenTree};

#[proc_macro]
pub fn greeting(_input: TokenStream) -> TokenStream {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/greeting.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    TokenTree::Literal(Literal::string(text.trim())).into()
}
