using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace RedisPoolKit.Generators;

/// <summary>Renders symbols of a referenced assembly back into C# declarations and calls.</summary>
internal static class SymbolText
{
    private static readonly SymbolDisplayFormat TypeFormat = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    // Signatures are compared without nullable annotations: they do not distinguish overloads.
    private static readonly SymbolDisplayFormat KeyFormat = SymbolDisplayFormat.FullyQualifiedFormat;

    public static string Type(ITypeSymbol type) => type.ToDisplayString(TypeFormat);

    public static string Identifier(string name) =>
        SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None || SyntaxFacts.GetContextualKeywordKind(name) != SyntaxKind.None
            ? "@" + name
            : name;

    /// <summary>The identity of a member for overload purposes: name, generic arity and parameter types.</summary>
    public static string SignatureKey(ISymbol member)
    {
        var sb = new StringBuilder();
        switch (member)
        {
            case IMethodSymbol m:
                sb.Append("M:").Append(m.Name).Append('`').Append(m.Arity);
                AppendKeyParameters(sb, m.Parameters);
                break;
            case IPropertySymbol p:
                sb.Append(p.IsIndexer ? "I:" : "P:").Append(p.IsIndexer ? "this" : p.Name);
                AppendKeyParameters(sb, p.Parameters);
                break;
            default:
                sb.Append("E:").Append(member.Name);
                break;
        }

        return sb.ToString();
    }

    private static void AppendKeyParameters(StringBuilder sb, IEnumerable<IParameterSymbol> parameters)
    {
        sb.Append('(');
        foreach (var p in parameters)
        {
            sb.Append(p.RefKind == RefKind.None ? string.Empty : "&").Append(p.Type.ToDisplayString(KeyFormat)).Append(',');
        }

        sb.Append(')');
    }

    public static ITypeSymbol? ReturnType(ISymbol member) => member switch
    {
        IMethodSymbol m => m.ReturnType,
        IPropertySymbol p => p.Type,
        IEventSymbol e => e.Type,
        _ => null,
    };

    public static string Parameters(IEnumerable<IParameterSymbol> parameters, bool forImplementation)
    {
        var sb = new StringBuilder();
        foreach (var p in parameters)
        {
            if (sb.Length > 0)
            {
                sb.Append(", ");
            }

            AppendAttributes(sb, p.GetAttributes(), null);
            if (forImplementation && p.IsParams)
            {
                sb.Append("params ");
            }

            sb.Append(p.RefKind switch
            {
                RefKind.Ref => "ref ",
                RefKind.Out => "out ",
                RefKind.In => "in ",
                RefKind.RefReadOnlyParameter => "ref readonly ",
                _ => string.Empty,
            });
            sb.Append(Type(p.Type)).Append(' ').Append(Identifier(p.Name));
            if (forImplementation && p.HasExplicitDefaultValue)
            {
                sb.Append(" = ").Append(DefaultValue(p));
            }
        }

        return sb.ToString();
    }

    public static string Arguments(IEnumerable<IParameterSymbol> parameters) =>
        string.Join(", ", parameters.Select(p => p.RefKind switch
        {
            RefKind.Ref => "ref ",
            RefKind.Out => "out ",
            RefKind.In or RefKind.RefReadOnlyParameter => "in ",
            _ => string.Empty,
        } + Identifier(p.Name)));

    public static string TypeParameters(IMethodSymbol method) =>
        method.IsGenericMethod ? "<" + string.Join(", ", method.TypeParameters.Select(t => Identifier(t.Name))) + ">" : string.Empty;

    public static string Constraints(IMethodSymbol method)
    {
        var sb = new StringBuilder();
        foreach (var tp in method.TypeParameters)
        {
            var parts = new List<string>();
            if (tp.HasReferenceTypeConstraint)
            {
                parts.Add(tp.ReferenceTypeConstraintNullableAnnotation == NullableAnnotation.Annotated ? "class?" : "class");
            }
            else if (tp.HasUnmanagedTypeConstraint)
            {
                parts.Add("unmanaged");
            }
            else if (tp.HasValueTypeConstraint)
            {
                parts.Add("struct");
            }
            else if (tp.HasNotNullConstraint)
            {
                parts.Add("notnull");
            }

            parts.AddRange(tp.ConstraintTypes.Select(Type));
            if (tp.HasConstructorConstraint)
            {
                parts.Add("new()");
            }

            if (tp.AllowsRefLikeType)
            {
                parts.Add("allows ref struct");
            }

            if (parts.Count > 0)
            {
                sb.Append(" where ").Append(Identifier(tp.Name)).Append(" : ").Append(string.Join(", ", parts));
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// Attributes the compiler reads at the implementation too: nullable-flow attributes (or it warns that
    /// nullability does not match) and <see cref="System.ObsoleteAttribute"/> (so forwarding an obsolete member does not warn).
    /// </summary>
    public static void AppendAttributes(StringBuilder sb, IEnumerable<AttributeData> attributes, string? target)
    {
        foreach (var a in attributes)
        {
            var cls = a.AttributeClass;
            if (cls is null)
            {
                continue;
            }

            var ns = cls.ContainingNamespace?.ToDisplayString();
            if (ns == "System.Diagnostics.CodeAnalysis" && cls.Name != "ExperimentalAttribute" || ns == "System" && cls.Name == "ObsoleteAttribute")
            {
                sb.Append('[');
                if (target is not null)
                {
                    sb.Append(target).Append(": ");
                }

                sb.Append(Type(cls));
                if (a.ConstructorArguments.Length > 0 || a.NamedArguments.Length > 0)
                {
                    var args = a.ConstructorArguments.Select(Constant)
                        .Concat(a.NamedArguments.Select(n => n.Key + " = " + Constant(n.Value)));
                    sb.Append('(').Append(string.Join(", ", args)).Append(')');
                }

                sb.Append(target is null && a.AttributeClass?.Name == "ObsoleteAttribute" ? "]\n    " : "] ");
            }
        }
    }

    private static string Constant(TypedConstant c) => c.Kind switch
    {
        TypedConstantKind.Array => c.IsNull ? "null" : "new[] { " + string.Join(", ", c.Values.Select(Constant)) + " }",
        TypedConstantKind.Type => c.Value is ITypeSymbol t ? "typeof(" + Type(t) + ")" : "null",
        _ when c.Type is not null => Literal(c.Type, c.Value),
        _ => "null",
    };

    public static string DefaultValue(IParameterSymbol p) => Literal(p.Type, p.ExplicitDefaultValue);

    private static string Literal(ITypeSymbol type, object? value)
    {
        if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable)
        {
            return value is null ? "null" : Literal(nullable.TypeArguments[0], value);
        }

        if (value is null)
        {
            return type.IsValueType ? "default" : "null";
        }

        if (type.TypeKind == TypeKind.Enum)
        {
            var member = type.GetMembers().OfType<IFieldSymbol>()
                .FirstOrDefault(f => f.HasConstantValue && Equals(f.ConstantValue, value));
            return member is not null
                ? Type(type) + "." + Identifier(member.Name)
                : "(" + Type(type) + ")(" + SymbolDisplay.FormatPrimitive(value, quoteStrings: true, useHexadecimalNumbers: false) + ")";
        }

        return value switch
        {
            double d when double.IsNaN(d) => "double.NaN",
            double d when double.IsPositiveInfinity(d) => "double.PositiveInfinity",
            double d when double.IsNegativeInfinity(d) => "double.NegativeInfinity",
            double d => d.ToString("R", CultureInfo.InvariantCulture) + "D",
            float f when float.IsNaN(f) => "float.NaN",
            float f when float.IsPositiveInfinity(f) => "float.PositiveInfinity",
            float f when float.IsNegativeInfinity(f) => "float.NegativeInfinity",
            float f => f.ToString("R", CultureInfo.InvariantCulture) + "F",
            decimal m => m.ToString(CultureInfo.InvariantCulture) + "M",
            // The literal's own type converts implicitly to these; narrower integers need the cast.
            bool or string or char or int or long or uint or ulong when type.SpecialType != SpecialType.None && type.SpecialType != SpecialType.System_Object
                => SymbolDisplay.FormatPrimitive(value, quoteStrings: true, useHexadecimalNumbers: false),
            _ => "(" + Type(type) + ")(" + SymbolDisplay.FormatPrimitive(value, quoteStrings: true, useHexadecimalNumbers: false) + ")",
        };
    }

    /// <summary>Diagnostic ids of <c>[Experimental]</c> APIs a member touches, so the generated file can opt in.</summary>
    public static void CollectExperimentalIds(ISymbol member, ISet<string> ids)
    {
        void FromSymbol(ISymbol? s)
        {
            for (; s is not null; s = s.ContainingSymbol)
            {
                foreach (var a in s.GetAttributes())
                {
                    if (a.AttributeClass?.Name == "ExperimentalAttribute" && a.ConstructorArguments.Length > 0 && a.ConstructorArguments[0].Value is string id)
                    {
                        ids.Add(id);
                    }
                }

                if (s is INamespaceSymbol)
                {
                    break;
                }
            }
        }

        void FromType(ITypeSymbol? t)
        {
            switch (t)
            {
                case IArrayTypeSymbol array:
                    FromType(array.ElementType);
                    break;
                case INamedTypeSymbol named:
                    FromSymbol(named);
                    foreach (var arg in named.TypeArguments)
                    {
                        FromType(arg);
                    }

                    break;
            }
        }

        FromSymbol(member);
        FromType(ReturnType(member));
        var parameters = member switch
        {
            IMethodSymbol m => m.Parameters,
            IPropertySymbol p => p.Parameters,
            _ => System.Collections.Immutable.ImmutableArray<IParameterSymbol>.Empty,
        };
        foreach (var p in parameters)
        {
            FromType(p.Type);
        }
    }
}
