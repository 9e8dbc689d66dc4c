"""The write path: plan an operation (extract, resolve entities, decide conflicts), journal
the plan, apply it to the stores."""
