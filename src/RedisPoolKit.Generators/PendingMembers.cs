using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace RedisPoolKit.Generators;

/// <summary>An interface member the partial class still has to implement.</summary>
internal readonly struct PendingMember
{
    public PendingMember(ISymbol symbol, bool isExplicit, bool overridesObject = false)
    {
        Symbol = symbol;
        IsExplicit = isExplicit;
        OverridesObject = overridesObject;
    }

    public ISymbol Symbol { get; }

    /// <summary>True when a public member with the same signature but another return type exists already.</summary>
    public bool IsExplicit { get; }

    /// <summary>True for an interface member that redeclares one of <see cref="object"/>'s (<c>ToString</c>): implemented by an override.</summary>
    public bool OverridesObject { get; }
}

internal static class PendingMembers
{
    /// <summary>
    /// Every instance member of <paramref name="contract"/> and its base interfaces, most derived first, that
    /// <paramref name="type"/> does not already implement. The generator sees the compilation without its own
    /// output, so whatever the compiler finds as an implementation is hand-written, and hand-written wins.
    /// </summary>
    public static List<PendingMember> Find(INamedTypeSymbol type, INamedTypeSymbol contract)
    {
        var declared = new Dictionary<string, ISymbol>(StringComparer.Ordinal);
        foreach (var own in type.GetMembers())
        {
            if (own is IMethodSymbol { MethodKind: MethodKind.Ordinary } or IPropertySymbol or IEventSymbol && own.ExplicitInterfaceImplementations().Length == 0)
            {
                declared[SymbolText.SignatureKey(own)] = own;
            }
        }

        var pending = new List<PendingMember>();
        foreach (var iface in new[] { contract }.Concat(contract.AllInterfaces))
        {
            foreach (var member in iface.GetMembers())
            {
                if (member.IsStatic || member is IMethodSymbol { MethodKind: not MethodKind.Ordinary } || member is not (IMethodSymbol or IPropertySymbol or IEventSymbol))
                {
                    continue;
                }

                var implementation = type.FindImplementationForInterfaceMember(member);
                if (implementation?.ContainingType.SpecialType == SpecialType.System_Object)
                {
                    pending.Add(new PendingMember(member, isExplicit: false, overridesObject: true));
                    continue;
                }

                if (implementation is not null && implementation.ContainingType.TypeKind != TypeKind.Interface)
                {
                    continue;
                }

                var key = SymbolText.SignatureKey(member);
                if (declared.TryGetValue(key, out var same))
                {
                    if (SymbolEqualityComparer.Default.Equals(SymbolText.ReturnType(same), SymbolText.ReturnType(member)))
                    {
                        continue;
                    }

                    pending.Add(new PendingMember(member, isExplicit: true));
                    continue;
                }

                declared[key] = member;
                pending.Add(new PendingMember(member, isExplicit: false));
            }
        }

        return pending;
    }

    private static System.Collections.Immutable.ImmutableArray<ISymbol> ExplicitInterfaceImplementations(this ISymbol symbol) => symbol switch
    {
        IMethodSymbol m => m.ExplicitInterfaceImplementations.CastArray<ISymbol>(),
        IPropertySymbol p => p.ExplicitInterfaceImplementations.CastArray<ISymbol>(),
        IEventSymbol e => e.ExplicitInterfaceImplementations.CastArray<ISymbol>(),
        _ => System.Collections.Immutable.ImmutableArray<ISymbol>.Empty,
    };
}
