"""netscope's entry point: ``python main.py fit --config configs/cifar.yaml``.

``main(args=None)`` takes the arguments as a user would type them (tests call it that way);
the installed ``netscope`` command runs the same function.
"""

from netscope.main import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
