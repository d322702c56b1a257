pub mod fastpath;
